"""explorer: the Qt desktop application of Quant Explorer."""
from .qt_fixes import keep_none_alive

keep_none_alive()  # PySide6 6.12 on Python 3.11 leaks references to None (see qt_fixes)
