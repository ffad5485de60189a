"""The cluster's certificates, made with the openssl command line (ECDSA P-256: fast to make).

One CA signs everything: the API server's serving certificate, the client certificates of
each component (their subject is how the API server's Node and RBAC authorizers know them)
and the API server's client certificate for kubelets. The service-account key pair signs
tokens. Certificates live 7 days: a lab is not meant to outlive that.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..netns import LabError

DAYS = "7"


def _openssl(args: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=30)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"openssl {args[0]} failed: {detail[-1] if detail else proc.returncode}")


def _key(path: Path) -> None:
    _openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path)],
             path.parent)
    path.chmod(0o600)


def make_ca(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    _key(d / "ca.key")
    _openssl(["req", "-x509", "-new", "-key", "ca.key", "-out", "ca.crt", "-days", DAYS,
              "-subj", "/CN=k8snet-lab-ca"], d)
    _key(d / "sa.key")
    _openssl(["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"], d)


def issue(d: Path, name: str, cn: str, org: str | None = None,
          sans: Sequence[str] = (), server: bool = False) -> tuple[Path, Path]:
    """A key and a certificate signed by ``d/ca.*``; returns (cert, key) paths."""
    _key(d / f"{name}.key")
    subj = f"/CN={cn}" + (f"/O={org}" if org else "")
    _openssl(["req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", subj], d)
    usage = "serverAuth" if server else "clientAuth"
    ext = [f"keyUsage=critical,digitalSignature,keyEncipherment", f"extendedKeyUsage={usage}"]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    (d / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", f"{name}.crt", "-days", DAYS,
              "-extfile", f"{name}.ext"], d)
    (d / f"{name}.csr").unlink()
    (d / f"{name}.ext").unlink()
    return d / f"{name}.crt", d / f"{name}.key"


def kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path,
               user: str = "k8snet") -> None:
    """A kubeconfig with the credentials inline, so it can be copied anywhere."""
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: k8snet-lab
  cluster:
    server: {server}
    certificate-authority-data: {b64(ca)}
users:
- name: {user}
  user:
    client-certificate-data: {b64(cert)}
    client-key-data: {b64(key)}
contexts:
- name: {user}@k8snet-lab
  context:
    cluster: k8snet-lab
    user: {user}
current-context: {user}@k8snet-lab
""")
    path.chmod(0o600)
