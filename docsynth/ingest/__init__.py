"""The ingest stage: documents in (PDFs, images, tar shards, local or remote), pages out with
their images and text: the PDF's text layer in reading order (columns, tables), OCR where a page
has none, near-duplicate detection, and a worker watch that names the page a crash was on."""
