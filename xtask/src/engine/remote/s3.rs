//! An S3-compatible bucket as a remote (`s3://BUCKET[/PREFIX]`), through rust-s3's synchronous client
//! (no async runtime). Its settings come only from the standard variables: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`), and
//! `AWS_ENDPOINT_URL` for services other than AWS, which are then addressed path-style.

use std::io::{Read, Write};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::{Bucket, Region};

use super::{read_full, valid_name, Metadata, ObjectInfo, StaleUpload, Store};

/// Files up to this size go up in one request, larger ones in parts of this size (S3 takes parts of
/// 5 MiB to 5 GiB): memory stays flat whatever the file's size.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// A bucket, and the prefix of this remote's keys in it.
pub struct S3Store {
    bucket: Box<Bucket>,
    /// `PREFIX/`, or empty for the bucket's top level.
    prefix: String,
    /// Where requests go, for errors.
    endpoint: String,
}

/// A variable's value, when it is set and not empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// How to reach S3, from the standard variables only (never from flags, which other users of the
/// machine can read). Not `Debug`: it holds the secret key.
pub struct S3Settings {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key: String,
    /// `AWS_SECRET_ACCESS_KEY`: never shown.
    pub secret_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: String,
    /// `AWS_ENDPOINT_URL`, for services other than AWS.
    pub endpoint: Option<String>,
}

impl S3Settings {
    /// Reads the `AWS_*` variables; an error says which are missing.
    pub fn from_env() -> anyhow::Result<S3Settings> {
        let (Some(access_key), Some(secret_key)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            anyhow::bail!(
                "an s3:// remote needs credentials: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)"
            );
        };
        Ok(S3Settings {
            access_key,
            secret_key,
            session_token: var("AWS_SESSION_TOKEN"),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: var("AWS_ENDPOINT_URL"),
        })
    }
}

impl S3Store {
    /// Connects to `bucket` with `settings` and checks that the bucket exists and answers to these
    /// credentials.
    pub fn open(bucket: &str, prefix: &str, settings: &S3Settings) -> anyhow::Result<S3Store> {
        let credentials = Credentials::new(
            Some(&settings.access_key),
            Some(&settings.secret_key),
            None,
            settings.session_token.as_deref(),
            None,
        )
        .context("invalid S3 credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")?;
        let endpoint = match &settings.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
            None => format!("https://s3.{}.amazonaws.com", settings.region),
        };
        let region = Region::Custom {
            region: settings.region.clone(),
            endpoint: endpoint.clone(),
        };
        let mut bucket = Bucket::new(bucket, region, credentials)
            .with_context(|| format!("cannot use the bucket {bucket:?}"))?;
        if settings.endpoint.is_some() {
            // S3-compatible services rarely have a DNS name per bucket.
            bucket.set_path_style();
        }
        let store = S3Store {
            bucket,
            prefix: match prefix {
                "" => String::new(),
                prefix => format!("{prefix}/"),
            },
            endpoint,
        };
        store.check_bucket()?;
        Ok(store)
    }

    /// HEAD on the bucket: it exists, and these credentials may use it.
    fn check_bucket(&self) -> anyhow::Result<()> {
        let name = self.bucket.name();
        let at = &self.endpoint;
        let (_, status) = self.bucket.head_object("/").map_err(|e| self.failed(e))?;
        match status {
            200..=299 => Ok(()),
            404 => anyhow::bail!(
                "the bucket {name} does not exist at {at}: create it, or fix --remote (or \
                 AWS_ENDPOINT_URL)"
            ),
            403 => anyhow::bail!(
                "the bucket {name} at {at} refuses these credentials: check AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY and the key's permissions"
            ),
            301 | 400 => anyhow::bail!(
                "the bucket {name} is not in region {} (HTTP {status}): set AWS_REGION to its \
                 region",
                self.bucket.region()
            ),
            status => anyhow::bail!("the bucket {name} at {at}: {}", service_error(status, "")),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// An error of the client, said for people: an unreachable endpoint, or the service's answer.
    fn failed(&self, error: S3Error) -> anyhow::Error {
        match error {
            S3Error::Atto(cause) => anyhow::anyhow!("cannot reach {}: {cause}", self.endpoint),
            S3Error::HttpFailWithBody(status, body) => {
                anyhow::anyhow!(service_error(status, &body))
            }
            other => anyhow::Error::new(other),
        }
    }

    /// Fails unless `status` is a success; `body` is the service's error document.
    fn check(&self, status: u16, body: &[u8]) -> anyhow::Result<()> {
        match status {
            200..=299 => Ok(()),
            status => Err(anyhow::anyhow!(service_error(
                status,
                &String::from_utf8_lossy(body)
            ))),
        }
    }

    /// Sends the parts of a multipart upload and completes it, only if no object has the name.
    fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        source: &mut dyn Read,
    ) -> anyhow::Result<()> {
        let mut buffer = vec![0; PART_SIZE];
        let mut parts = Vec::new();
        loop {
            // The source fails at its end if the bytes differ from those hashed: nothing completes.
            let n = read_full(source, &mut buffer).context("cannot read the file")?;
            if n == 0 {
                break;
            }
            let number = parts.len() as u32 + 1;
            let part = self
                .bucket
                .put_multipart_chunk(&buffer[..n], key, number, upload_id, OCTETS)
                .map_err(|e| self.failed(e))
                .with_context(|| format!("part {number} failed"))?;
            parts.push(part);
        }
        let mut conditional = (*self.bucket).clone();
        conditional.add_header("If-None-Match", "*");
        match conditional.complete_multipart_upload(key, upload_id, parts) {
            Ok(response) => self.check(response.status_code(), response.as_slice()),
            // rust-s3 wants the root `CompleteMultipartUploadResult`; some services (moto) answer
            // `...Response`. A success status without an error document is a completed upload (the
            // caller checks the object's size and checksum next in any case).
            Err(S3Error::HttpFailWithBody(200, body)) if !body.contains("<Error>") => Ok(()),
            Err(error) => Err(self.failed(error)),
        }
    }
}

/// The content type of every object: bytes.
const OCTETS: &str = "application/octet-stream";

/// The service's error document said in one line: `HTTP 403 AccessDenied: Access Denied`.
fn service_error(status: u16, body: &str) -> String {
    let element = |tag: &str| {
        let (_, rest) = body.split_once(&format!("<{tag}>"))?;
        rest.split_once(&format!("</{tag}>"))
            .map(|(value, _)| value)
    };
    let hint = match status {
        403 => " (check the credentials and the key's permissions)",
        412 => " (an object of that name appeared meanwhile; nothing was replaced)",
        _ => "",
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}{hint}"),
        (Some(code), None) => format!("HTTP {status} {code}{hint}"),
        _ => format!("HTTP {status}{hint}"),
    }
}

impl Store for S3Store {
    fn head(&self, name: &str) -> anyhow::Result<Option<ObjectInfo>> {
        let (head, status) = self
            .bucket
            .head_object(self.key(name))
            .map_err(|e| self.failed(e))?;
        match status {
            404 => return Ok(None),
            status => self.check(status, b"")?,
        }
        let size = head
            .content_length
            .and_then(|n| u64::try_from(n).ok())
            .context("the service reported no size")?;
        let metadata = head.metadata.unwrap_or_default().into_iter().collect();
        Ok(Some(ObjectInfo {
            name: name.to_string(),
            size,
            metadata,
        }))
    }

    fn create(
        &self,
        name: &str,
        source: &mut dyn Read,
        size: u64,
        metadata: &Metadata,
    ) -> anyhow::Result<()> {
        let key = self.key(name);
        let mut described = (*self.bucket).clone();
        for (field, value) in metadata {
            described.add_header(&format!("x-amz-meta-{field}"), value);
        }
        if size <= PART_SIZE as u64 {
            let mut body = Vec::with_capacity(size as usize);
            source
                .read_to_end(&mut body)
                .context("cannot read the file")?;
            // Created only if no object has the name, where the service supports conditional
            // writes; the caller checked before otherwise.
            described.add_header("If-None-Match", "*");
            let response = described
                .put_object(&key, &body)
                .map_err(|e| self.failed(e))?;
            return self.check(response.status_code(), response.as_slice());
        }
        let upload = described
            .initiate_multipart_upload(&key, OCTETS)
            .map_err(|e| self.failed(e))?;
        let sent = self.upload_parts(&key, &upload.upload_id, source);
        if sent.is_err() {
            // No partial object stays behind; if even this fails (the service is gone), the next
            // `prune --remote`, or the bucket's lifecycle rule, removes the parts.
            let _ = self.bucket.abort_upload(&key, &upload.upload_id);
        }
        sent
    }

    fn fetch(&self, name: &str, into: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        let status = self
            .bucket
            .get_object_to_writer(self.key(name), into)
            .map_err(|e| self.failed(e))?;
        // The error document went to `into`; the download is discarded anyway.
        self.check(status, b"")
    }

    fn list(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let pages = self
            .bucket
            .list(self.prefix.clone(), Some("/".into()))
            .map_err(|e| self.failed(e))?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.contents)
            .filter_map(|object| {
                let name = object.key.strip_prefix(&self.prefix)?;
                valid_name(name).then(|| (name.to_string(), object.size))
            })
            .collect())
    }

    fn delete(&self, name: &str) -> anyhow::Result<()> {
        let response = self
            .bucket
            .delete_object(self.key(name))
            .map_err(|e| self.failed(e))?;
        self.check(response.status_code(), response.as_slice())
    }

    fn unfinished(&self) -> anyhow::Result<Vec<(StaleUpload, Option<DateTime<Utc>>)>> {
        let prefix = Some(self.prefix.as_str()).filter(|p| !p.is_empty());
        let pages = self
            .bucket
            .list_multiparts_uploads(prefix, Some("/"))
            .map_err(|e| self.failed(e))?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.uploads)
            .filter_map(|upload| {
                let name = upload.key.strip_prefix(&self.prefix)?;
                let started = DateTime::parse_from_rfc3339(&upload.initiated)
                    .ok()
                    .map(|t| t.to_utc());
                let stale = StaleUpload {
                    name: name.to_string(),
                    id: upload.id,
                };
                valid_name(name).then_some((stale, started))
            })
            .collect())
    }

    fn abort(&self, upload: &StaleUpload) -> anyhow::Result<()> {
        self.bucket
            .abort_upload(&self.key(&upload.name), &upload.id)
            .map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_are_one_line() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified \
                    bucket does not exist</Message></Error>";
        assert_eq!(
            service_error(404, body),
            "HTTP 404 NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(
            service_error(403, ""),
            "HTTP 403 (check the credentials and the key's permissions)"
        );
    }
}
