//! What can go wrong writing a site. Every error names the file or folder concerned;
//! [`crate::exit::of_error`] maps them (a held lock is 75, anything else 4).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the site could not be written (`rel` is its path in the site).
    #[error("cannot write {rel} in the site")]
    Write {
        rel: String,
        #[source]
        source: std::io::Error,
    },
    /// A page template failed (a bug in lith, never the input's fault).
    #[error("cannot render {rel}")]
    Render {
        rel: String,
        #[source]
        source: askama::Error,
    },
    /// A JSON file of the site could not be encoded.
    #[error("cannot encode {rel}")]
    Encode {
        rel: String,
        #[source]
        source: serde_json::Error,
    },
    /// `--out` names something the site must not replace.
    #[error("refusing to write the site to {}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    /// A step of publishing (`doing` says which) failed on `path`.
    #[error("{doing} {}", path.display())]
    Publish {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The changes since a previous build, compared while the run pages were
    /// written, could not be read (the error says where).
    #[error(transparent)]
    Changes(anyhow::Error),
    /// Another build holds the output's lock for longer than a build waits.
    #[error("cannot take the lock of the site")]
    Lock(#[source] crate::bundle::lock::LockError),
}

impl Error {
    pub(crate) fn publish(
        doing: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Publish {
            doing,
            path,
            source,
        }
    }
}
