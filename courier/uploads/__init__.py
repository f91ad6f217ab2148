"""The generic two-step upload: every file a client sends Courier goes through here.

A kind of upload (messaging attachments, bulk attachments, email attachments ...) is one
declaration, :class:`courier.uploads.kind.UploadKind`, in ``courier/domains/<d>/uploads.py``;
the rest is written once:

- ``keys``: where its objects live (``orgs/<org>/<segment>/<id>/upload|file|thumbnail.*``);
- ``limits``: accepted types, the size of one file, per-parent count and total size;
- ``inspection``: the real type from the bytes, images decoded, thumbnails;
- ``processing``: the storage side of processing an upload;
- ``service``: the two steps (start, process-upload) as an ``UploadService`` to subclass;
- ``answers``: where to upload (step 1's answer) and signed download links;
- ``routes``: the two routes of a kind whose start takes a JSON:API document;
- ``jobs``: the stale-upload cleanup and the deletion of files whose rows are gone;
- ``purge``: a purge hook's part: rows archived and deleted, files deleted by jobs.

docs/ARCHITECTURE.md ("An upload") shows a declaration; docs/ATTACHMENTS.md the behaviour.
"""
