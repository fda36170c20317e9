"""Print the catalogue of finding codes as a Markdown table (for docs and vendors)."""

from __future__ import annotations

from . import catalogue


def main() -> None:
    print("| code | severity | standard | what it means | raised by |")
    print("|---|---|---|---|---|")
    for c in catalogue():
        print(f"| `{c.code}` | {c.severity} | {c.section or '-'} | {c.title} | {c.origin} |")


if __name__ == "__main__":
    main()
