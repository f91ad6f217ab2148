"""The HTTP face of local storage: signed uploads and downloads under /uploads/."""
