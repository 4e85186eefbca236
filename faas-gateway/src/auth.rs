//! Basic auth credentials, read as OpenFaaS reads them: the files
//! `basic-auth-user` and `basic-auth-password` in the secret mount path,
//! surrounding whitespace trimmed.

use std::path::Path;

use faas_core::api::BasicAuth;

use crate::error::GatewayError;

/// The file holding the user name.
pub const USER_FILE: &str = "basic-auth-user";
/// The file holding the password.
pub const PASSWORD_FILE: &str = "basic-auth-password";

/// Reads the credentials from `dir`; a missing, unreadable or empty file is
/// an error naming it. The password is never logged.
pub fn load(dir: &Path) -> Result<BasicAuth, GatewayError> {
    Ok(BasicAuth { user: read(dir, USER_FILE)?, password: read(dir, PASSWORD_FILE)? })
}

fn read(dir: &Path, name: &str) -> Result<String, GatewayError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| GatewayError::BasicAuth { path: path.clone(), problem: format!("cannot be read: {e}") })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(GatewayError::BasicAuth { path, problem: "is empty".to_owned() });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trimmed_credentials_and_names_bad_files() {
        let dir = std::env::temp_dir().join(format!("faas-gateway-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains(USER_FILE) && err.contains("cannot be read"), "{err}");
        std::fs::write(dir.join(USER_FILE), "admin\n").unwrap();
        std::fs::write(dir.join(PASSWORD_FILE), "  \n").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains(PASSWORD_FILE) && err.contains("is empty"), "{err}");
        std::fs::write(dir.join(PASSWORD_FILE), "s3cret\n").unwrap();
        let auth = load(&dir).unwrap();
        assert_eq!((auth.user.as_str(), auth.password.as_str()), ("admin", "s3cret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
