//! Files the library creates for a caller hold scan results and a key's ledger: they are made
//! readable by their owner only (directories 0700, files 0600), whatever the umask.

use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700 (existing directories are left as
/// they are: they are the caller's).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    Ok(())
}

/// Creates `path` empty with mode 0600 when it does not exist, so that a library that then
/// opens it (SQLite: its -wal and -shm files take the database file's mode) never makes it
/// readable by others. An existing file is left as it is.
pub fn create_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn what_is_created_is_the_owners_alone_whatever_the_umask() {
        let base = std::env::temp_dir().join(format!("exona-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // SAFETY: umask is process-wide; this test only widens it while it creates its files,
        // and what others create meanwhile is at most more open (never broken).
        let old = unsafe { libc::umask(0) };
        let dir = base.join("a/b");
        let made = create_dir(&dir).and_then(|_| create_file(&dir.join("f")));
        unsafe { libc::umask(old) };
        made.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&base.join("a")), 0o700);
        assert_eq!(mode(&dir.join("f")), 0o600);
        std::fs::write(dir.join("f"), b"kept").unwrap();
        create_file(&dir.join("f")).unwrap();
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"kept", "an existing file is not touched");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
