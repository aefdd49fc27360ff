"""Secrets kept out of what docsynth prints and logs: the credentials of a URL
(`http://user:hf_...@host`, `s3://KEY:SECRET@bucket`), the secret parameters of a signed URL
(`X-Amz-Signature=`, `token=`, `sig=` ...), bearer tokens, and anything shaped like a Hub token.
The CLI passes every error message and log record through `redact` (docsynth.cli.common), so a
message that quotes an endpoint, a request or a server's reply is safe to print wherever it
comes from; the Hub code adds the token it holds (docsynth.hub)."""

from __future__ import annotations

import logging

import regex

_USERINFO = regex.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
_PARAMS = regex.compile(r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|token|"
                        r"access_token|api_key|apikey|key|password|secret)=)[^&\s#\"']+")
_TOKENS = regex.compile(r"(?i)(bearer\s+)\S+|\bhf_[A-Za-z0-9]{8,}|\bsk-[A-Za-z0-9_-]{16,}")


def redact(text: str, *known: str | None) -> str:
    """TEXT with URL credentials, secret URL parameters, bearer and Hub/OpenAI-style tokens, and
    each of KNOWN (secrets held, such as the Hub token), replaced by [redacted]."""
    for secret in known:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _USERINFO.sub(lambda m: m.group(1) + "[redacted]@", text)
    text = _PARAMS.sub(lambda m: m.group(1) + "[redacted]", text)
    return _TOKENS.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class Redacted(logging.Filter):
    """Log records with secrets replaced (`redact`), on every handler the CLI installs: a library
    may log the URL or the header it was given."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True
