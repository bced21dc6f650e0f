//! A backup or export to read, plaintext or encrypted (known by its content): its data as a stream,
//! decrypted and decompressed as it is read, or as a file for the tools that need one.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::compression::{decompressed, Compression};
use super::read_head;
use crate::engine::crypto::{self, Decrypted, Identities};

/// A file to read a backup or export from.
pub struct Source {
    path: PathBuf,
    encrypted: bool,
    identities: Identities,
}

impl Source {
    /// The file at `path`; `identities` decrypt it if it is encrypted, when its data is read.
    pub fn new(path: &Path, identities: &Identities) -> anyhow::Result<Source> {
        Ok(Source {
            path: path.to_path_buf(),
            encrypted: crypto::is_encrypted(&read_head(path, 64)?),
            identities: identities.clone(),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is an age file.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Whether reading its data needs an identity that was not given.
    pub fn lacks_identity(&self) -> bool {
        self.encrypted && self.identities.is_empty()
    }

    /// Its data as stored inside the encryption: decrypted, still compressed if it is.
    fn open_raw(&self) -> anyhow::Result<Box<dyn Read>> {
        crypto::open(&self.path, &self.identities)
    }

    /// The first `limit` bytes of its data as stored inside the encryption (fewer if it is shorter).
    pub fn head(&self, limit: usize) -> anyhow::Result<Vec<u8>> {
        let mut head = Vec::with_capacity(limit);
        self.open_raw()?
            .take(limit as u64)
            .read_to_end(&mut head)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        Ok(head)
    }

    /// How its data is compressed (inside the encryption, if it is encrypted).
    pub fn compression(&self) -> anyhow::Result<Compression> {
        Ok(Compression::of(&self.head(4)?))
    }

    /// Its data, decrypted and decompressed as it is read.
    pub fn open(&self) -> anyhow::Result<Box<dyn Read>> {
        decompressed(self.open_raw()?, &self.path)
    }

    /// A file holding its data, for the tools that need one: the file itself, or a decrypted copy
    /// in a private directory that goes when the [`PlainFile`] is dropped.
    pub fn plain_file(&self) -> anyhow::Result<PlainFile> {
        if !self.encrypted {
            return Ok(PlainFile {
                path: self.path.clone(),
                _decrypted: None,
            });
        }
        // The copy keeps the name without `.age`, so that what tools say about it is recognisable.
        let name = match self.path.file_stem() {
            Some(stem) => stem.to_string_lossy(),
            None => "decrypted".into(),
        };
        let decrypted = crypto::decrypt_to_private_file(&self.path, &self.identities, &name)?;
        Ok(PlainFile {
            path: decrypted.path.clone(),
            _decrypted: Some(decrypted),
        })
    }
}

/// A file holding a [`Source`]'s data.
pub struct PlainFile {
    path: PathBuf,
    _decrypted: Option<Decrypted>,
}

impl PlainFile {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
