"""The public preview page of ReadDisplayInformation: OpenGraph tags for messenger link previews.

Every value is HTML-escaped, and the page carries no script at all; the Content-Security-Policy
forbids any, because the page's URL fragment may hold the transfer secret.
"""

from __future__ import annotations

from html import escape

from tigress.relay.stores.base import DisplayInformation

PREVIEW_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; img-src https:; style-src 'unsafe-inline'; base-uri 'none';"
        " form-action 'none'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "color:#222}img{max-width:100%;border-radius:8px}p.note{color:#666;font-size:.9rem}"
)


def render_preview(
    display: DisplayInformation, page_url: str, image_width: int, image_height: int
) -> bytes:
    title = escape(display.title, quote=True)
    description = escape(display.description, quote=True)
    image = escape(display.image_url, quote=True)
    url = escape(page_url, quote=True)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{title}</title>\n"
        f'<meta property="og:title" content="{title}">\n'
        f'<meta property="og:description" content="{description}">\n'
        f'<meta property="og:image" content="{image}">\n'
        f'<meta property="og:image:width" content="{image_width}">\n'
        f'<meta property="og:image:height" content="{image_height}">\n'
        f'<meta property="og:url" content="{url}">\n'
        '<meta property="og:type" content="website">\n'
        f"<style>{_STYLE}</style>\n"
        "</head><body>\n"
        f"<h1>{title}</h1>\n"
        f"<p>{description}</p>\n"
        f'<img src="{image}" alt="" width="{image_width}" height="{image_height}">\n'
        '<p class="note">Open this link on your phone with a wallet app that supports'
        " Tigress credential sharing to receive it.</p>\n"
        "</body></html>\n"
    ).encode()
