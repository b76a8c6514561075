"""The form of a URL Hopper calls out to (a webhook endpoint, an `http` job's target), as one
regular expression: the API documents it as the field's `pattern` and checks it as written."""

# An absolute http(s) URL as RFC 3986 writes it, with a host (a name in ASCII, so an
# internationalised one in its punycode form, or an IP literal), an optional port from 1 to 65535,
# a path and a query in percent-encoded ASCII, and no user information or fragment. Which hosts
# it may reach is the outbound guard's to say, when it is called.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_H16 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32 = f"(?:{_H16}:{_H16}|{_OCTET}(?:\\.{_OCTET}){{3}})"
_IPV6 = (
    "(?:"
    + "|".join(  # RFC 3986's IPv6address, alternative by alternative
        [
            f"(?:{_H16}:){{6}}{_LS32}",
            f"::(?:{_H16}:){{5}}{_LS32}",
            f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
            *(f"(?:(?:{_H16}:){{0,{n}}}{_H16})?::(?:{_H16}:){{{4 - n}}}{_LS32}" for n in (1, 2)),
            f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
            f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
            f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
HTTP_URL_PATTERN = (
    f"^https?://(?:{_LABEL}(?:\\.{_LABEL})*|\\[{_IPV6}\\])(?::{_PORT})?"
    f"(?:/(?:{_PCHAR}|/)*)?(?:\\?(?:{_PCHAR}|[/?])*)?$"
)

# A host as an allow-list names it: a name (an optional final dot), or an IP address (IPv6 with
# or without its brackets).
HOST_PATTERN = f"^(?:{_LABEL}(?:\\.{_LABEL})*\\.?|\\[{_IPV6}\\]|{_IPV6})$"
