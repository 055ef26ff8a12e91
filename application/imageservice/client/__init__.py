"""``imageservice client``: the command-line client for people with folders of images. It
speaks the public JSON API only, over HTTP, like any integrator (docs/API.md "The command-line
client"); of the server's code it reads just the core's tables (formats, statuses, names) and the
API's download variants."""
