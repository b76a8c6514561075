"""The HTTP entrypoint: Flask + flask-smorest. Views translate, call one domain service, and map
domain errors to problems."""
