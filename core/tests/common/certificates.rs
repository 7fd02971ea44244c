//! Test certificates made at test time with the openssl command line (nothing is committed):
//! CAs and the certificates they sign, as PEM files in a directory.

use std::path::Path;
use std::process::Command;

pub fn openssl(directory: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(directory)
        .output()
        .expect("the openssl command line");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
}

/// A P-256 private key in `{name}-key.pem`.
pub fn new_key(directory: &Path, name: &str) {
    openssl(
        directory,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}-key.pem"),
        ],
    );
}

/// A self-signed CA: `{name}.pem` and `{name}-key.pem`.
pub fn ca(directory: &Path, name: &str) {
    new_key(directory, name);
    openssl(
        directory,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}-key.pem"),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A certificate signed by `ca` with `extensions` (an openssl extension file's text):
/// `{name}-cert.pem`, `{name}-key.pem`, and both in the store `{name}.pem`.
pub fn leaf(directory: &Path, name: &str, subject: &str, ca: &str, extensions: &str) {
    new_key(directory, name);
    openssl(
        directory,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}-key.pem"),
            "-subj",
            subject,
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(directory.join(format!("{name}.ext")), extensions).unwrap();
    openssl(
        directory,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}-cert.pem"),
        ],
    );
    let store = [
        std::fs::read_to_string(directory.join(format!("{name}-key.pem"))).unwrap(),
        std::fs::read_to_string(directory.join(format!("{name}-cert.pem"))).unwrap(),
    ]
    .concat();
    std::fs::write(directory.join(format!("{name}.pem")), store).unwrap();
}
