"""Chart and table style, and HTML reports."""
