"""Cloud Image Service: presigned uploads, an event-driven processor, a JSON API and a browser UI."""

__version__ = "0.1.0"
