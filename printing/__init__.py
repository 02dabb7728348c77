"""Printing: ESC/POS renderers, print jobs, transports, the print bridge and the virtual printer (grows in later issues)."""
