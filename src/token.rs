//! API tokens: generation, the admin token file, and constant-time comparison. A token is a
//! secret: it is read from an environment variable named in config or from `<data>/admin.token`
//! (mode 0600), and never written to sled, logs or error messages.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a token could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the admin token file {path}: {source}; check its permissions, or set the token in the environment")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the admin token file {path}: {source}; check that the data directory is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the admin token file {0} is empty; delete it and restart crier to generate a new one"
    )]
    Empty(PathBuf),
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
}

/// `n` random bytes from the OS, hex-encoded.
pub fn random_hex(n: usize) -> Result<String, TokenError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The admin token file inside a data directory.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.token")
}

/// Reads the admin token from `<data>/admin.token`, if the file exists.
pub fn read_admin_token(data_dir: &Path) -> Result<Option<String>, TokenError> {
    let path = admin_token_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().is_empty() => Err(TokenError::Empty(path)),
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

/// Returns the admin token from `<data>/admin.token`, generating the file (mode 0600, created
/// exclusively) on first start. The flag says whether it was just generated.
pub fn load_or_create_admin_token(data_dir: &Path) -> Result<(String, bool), TokenError> {
    if let Some(t) = read_admin_token(data_dir)? {
        return Ok((t, false));
    }
    let path = admin_token_path(data_dir);
    let token = random_hex(32)?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| TokenError::Write {
            path: path.clone(),
            source,
        })?;
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|source| TokenError::Write {
            path: path.clone(),
            source,
        })?;
    Ok((token, true))
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // subtle compares equal lengths without branching on the bytes; a length mismatch is
    // answered at once (lengths are not secret: every token of a kind has the same length).
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn admin_token_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, created) = load_or_create_admin_token(dir.path()).unwrap();
        assert!(created);
        assert_eq!(t1.len(), 64);
        let mode = std::fs::metadata(admin_token_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (t2, created) = load_or_create_admin_token(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(t1, t2);
    }

    #[test]
    fn compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
