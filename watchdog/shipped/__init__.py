"""Files shipped inside the package: the default rules and the message templates.

`rules/` and `templates/` live at the repository's top level, where admins look for them; the
symlinks here put them inside the installed package, so a plain install works from any folder.
"""

from importlib import resources
from pathlib import Path


def shipped_path(name: str) -> Path:
    """Path of a shipped folder (`rules` or `templates`)."""
    return Path(str(resources.files("watchdog.shipped") / name))
