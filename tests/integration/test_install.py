"""`make install` (apxs -i) into a throwaway server root, then a real round
trip through the module loaded from there."""
import subprocess
from datetime import date

import hellotest as ht


class InstalledHttpd(ht.Httpd):
    """An httpd whose LoadModule points at an installed copy of the module."""

    def __init__(self, root, installed, **kw):
        self.installed = installed
        super().__init__(root, **kw)

    def config_text(self):
        return super().config_text().replace(str(ht.MODULE), str(self.installed))


def test_make_install_into_a_server_root(db, tmp_path, names):
    modules = tmp_path / "root" / "modules"
    modules.mkdir(parents=True)
    out = subprocess.run(["make", "-C", str(ht.REPO), "install", f"LIBEXECDIR={modules}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    installed = modules / "mod_hello.so"
    assert installed.is_file()
    assert installed.read_bytes() == ht.MODULE.read_bytes()

    server = InstalledHttpd(tmp_path / "root", installed, db=db)
    assert str(installed) in server.config_text()
    rc, text = server.check_config()
    assert rc == 0, text
    server.start()
    try:
        client = server.client()
        user = names.new()
        assert client.put_date(f"/hello/{user}", "1990-01-02").status == 204
        r = client.get(f"/hello/{user}")
        assert r.status == 200
        assert r.message == ht.expected_message(user, date(1990, 1, 2), ht.utc_today())
        server.assert_healthy()
    finally:
        server.stop()
