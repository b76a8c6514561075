"""The checks on the operators' files (deploy/, docker-compose.yml, the Procfile), as plain
functions: the test modules run each one on the real files, and on a broken copy to show that it
can fail. The modules are registered for pytest's assertion rewriting (before any is imported),
so that a failing check explains itself as an assertion in a test module would."""

import pkgutil

import pytest

pytest.register_assert_rewrite(*(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)))
