"""Documents people keep: budget decisions and monthly statements, as PDF in Finnish or Swedish.

Rendered with reportlab's standard fonts (WinAnsi: €, ä, ö, å and their capitals are in it), so
nothing depends on fonts installed on the machine. A decision is rendered once, when it is made,
and its bytes are stored (``wallet.storage.sql.decisions``); it is never rendered again.
"""
