"""Professional addresses from a template such as `{first_name}.{last_name}@acme.fr`, with namesake suffixes."""

import re
from collections.abc import Iterator
from string import Formatter

from app.services.names import address_part

PLACEHOLDERS = {"first_name", "last_name"}
# `local@domain.tld`, without spaces; nor commas, which Lucca's filters read as separating values. The domain's
# labels exclude the dot, so matching stays linear whatever the length.
ADDRESS = re.compile(r"[^@\s,]+@[^@\s,.]+(?:\.[^@\s,.]+)+")


def check_template(template: str) -> str:
    """Raise ValueError unless the template uses only the known placeholders and yields one address."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"malformed template: {exc}") from None
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError(f"unknown placeholder {{{name}}}: use {{first_name}} and {{last_name}} only")
    local, at, domain = render(template, "a", "b").partition("@")
    if not local or not at or "." not in domain or "@" in domain:
        raise ValueError("the template must give one address, such as {first_name}.{last_name}@acme.fr")
    return template


def is_address(text: str) -> bool:
    """Whether `text` can be an e-mail address (and be looked for as one)."""
    return ADDRESS.fullmatch(text) is not None


def render(template: str, first_name: str, last_name: str) -> str:
    return template.format(first_name=address_part(first_name), last_name=address_part(last_name))


def candidates(address: str) -> Iterator[str]:
    """The address, then `jean.dupont2@…`, `jean.dupont3@…` and so on."""
    local, _, domain = address.rpartition("@")
    yield address
    suffix = 2
    while True:
        yield f"{local}{suffix}@{domain}"
        suffix += 1
