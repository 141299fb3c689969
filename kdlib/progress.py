"""Progress bars: `tqdm.auto` (widgets in Jupyter, text elsewhere)."""
from tqdm.auto import tqdm  # noqa: F401
