"""File transfer with stations: firmware downloads and log uploads over HTTPS (FW-01, LOG-01)."""
