"""Local platform emulators (sandboxes): real HTTP servers speaking each platform's wire format."""
