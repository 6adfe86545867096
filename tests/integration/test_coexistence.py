"""mod_hello shares a server with other content: requests outside its
locations must be served exactly as they would be without it (the module
walks the locations early to recognise its own requests, and must leave the
config of every other request untouched)."""
import os
import shutil
import tempfile

import hellotest as ht

MODULES = ht.MODULES_DIR


def test_other_requests_keep_location_over_directory_and_merge_once(db, tmp_path):
    # Apache's children (www-data when run as root) must read the files:
    # pytest's own temporary directories are private.
    base = tempfile.mkdtemp(prefix="hello-docroot-")
    os.chmod(base, 0o755)
    docroot = ht.Path(base)
    (docroot / "static").mkdir(mode=0o755)
    (docroot / "static" / "file.txt").write_text("static content\n")
    os.chmod(docroot / "static" / "file.txt", 0o644)
    extra = f"""
LoadModule headers_module {MODULES}/mod_headers.so
DocumentRoot "{docroot}"
<Directory "{docroot}">
    AllowOverride None
    Require all granted
    Header add X-Section directory
</Directory>
<Location /static>
    Header add X-Section location
    Header add X-Once added-once
</Location>
"""
    server = ht.Httpd(tmp_path / "root", db=db, extra=extra)
    server.start()
    try:
        client = server.client()
        r = client.request("GET", "/static/file.txt", check=False)
        assert r.status == 200
        assert r.body == b"static content\n"
        # Each section's Header applied once, the <Location> after the
        # <Directory>, as httpd merges them without the module.
        values = [v for k, v in r.headers.items() if k.lower() == "x-section"]
        if len(values) == 1:
            values = [v.strip() for v in values[0].split(",")]
        assert values == ["directory", "location"], r.headers
        once = [v for k, v in r.headers.items() if k.lower() == "x-once"]
        assert once == ["added-once"], r.headers
        # And the API next to it still answers.
        assert client.get("/hello/nobodyhere").status == 404
        server.assert_healthy()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
