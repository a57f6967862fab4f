//! The S3 restore/archive target: SigV4-presigned requests (rusty-s3) sent with reqwest, bucket creation,
//! and a bounded-memory multipart upload that is completed only after the caller verified the data.

use std::time::Duration;

use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use super::config::S3Target;

/// S3 allows at most 10 000 parts; 16 MiB parts keep memory bounded and reach ~160 GB.
pub const PART_SIZE: usize = 16 * 1024 * 1024;
const SIGN_FOR: Duration = Duration::from_secs(3600);

/// A failed S3 request.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// Building the client (TLS material) failed.
    #[error("failed to set up the S3 client: {0}")]
    Setup(String),
    /// A request failed.
    #[error("S3 {action} failed: {message}")]
    Request {
        /// The S3 action.
        action: &'static str,
        /// Status or transport error.
        message: String,
    },
}

/// A connected S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Client {
    http: reqwest::Client,
    bucket: Bucket,
    creds: Credentials,
    endpoint: String,
}

impl S3Client {
    /// A client for the target (custom CA and client certificate when configured).
    pub fn new(t: &S3Target) -> Result<Self, S3Error> {
        let setup = |m: String| S3Error::Setup(m);
        let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(30));
        if let Some(ca) = &t.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| setup(format!("reading CA {}: {e}", ca.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(format!("CA {}: {e}", ca.display())))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &t.client_cert {
            let mut pem =
                std::fs::read(cert).map_err(|e| setup(format!("reading {}: {e}", cert.display())))?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).map_err(|e| setup(format!("reading {}: {e}", key.display())))?);
            let id =
                reqwest::Identity::from_pem(&pem).map_err(|e| setup(format!("client certificate: {e}")))?;
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| setup(e.to_string()))?;
        let bucket = Bucket::new(t.endpoint.clone(), UrlStyle::Path, t.bucket.clone(), "us-east-1")
            .map_err(|e| setup(format!("bucket {}: {e}", t.bucket)))?;
        let creds = Credentials::new(t.access_key.clone(), t.secret_key.clone());
        let endpoint = format!("{}{}", t.endpoint.as_str(), t.bucket);
        Ok(Self {
            http,
            bucket,
            creds,
            endpoint,
        })
    }

    /// `<endpoint>/<bucket>/<key>` (K8up's `restore_location`).
    pub fn location(&self, key: &str) -> String {
        format!("{}/{key}", self.endpoint)
    }

    async fn send(
        &self,
        action: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, S3Error> {
        let resp = req.send().await.map_err(|e| S3Error::Request {
            action,
            message: e.to_string(),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(S3Error::Request {
            action,
            message: format!("HTTP {status}: {}", body.chars().take(300).collect::<String>()),
        })
    }

    /// Creates the bucket unless it exists.
    pub async fn ensure_bucket(&self) -> Result<(), S3Error> {
        let head = self.bucket.head_bucket(Some(&self.creds)).sign(SIGN_FOR);
        let resp = self.http.head(head).send().await.map_err(|e| S3Error::Request {
            action: "HeadBucket",
            message: e.to_string(),
        })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let url = self.bucket.create_bucket(&self.creds).sign(SIGN_FOR);
        match self.send("CreateBucket", self.http.put(url)).await {
            Ok(_) => Ok(()),
            // Created concurrently by someone else.
            Err(S3Error::Request { message, .. })
                if message.contains("BucketAlreadyOwnedByYou") || message.contains("BucketAlreadyExists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Uploads a whole object in one request.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), S3Error> {
        let url = self.bucket.put_object(Some(&self.creds), key).sign(SIGN_FOR);
        self.send("PutObject", self.http.put(url).body(body))
            .await
            .map(|_| ())
    }

    /// Downloads an object (used by tests and verification).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let url = self.bucket.get_object(Some(&self.creds), key).sign(SIGN_FOR);
        let resp = self.send("GetObject", self.http.get(url)).await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| S3Error::Request {
                action: "GetObject",
                message: e.to_string(),
            })
    }

    /// Lists object keys (first 1000).
    pub async fn list(&self) -> Result<Vec<String>, S3Error> {
        let url = self.bucket.list_objects_v2(Some(&self.creds)).sign(SIGN_FOR);
        let resp = self.send("ListObjectsV2", self.http.get(url)).await?;
        let text = resp.text().await.map_err(|e| S3Error::Request {
            action: "ListObjectsV2",
            message: e.to_string(),
        })?;
        let parsed =
            rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| S3Error::Request {
                action: "ListObjectsV2",
                message: e.to_string(),
            })?;
        Ok(parsed.contents.into_iter().map(|o| decode_key(&o.key)).collect())
    }

    /// Deletes an object.
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let url = self.bucket.delete_object(Some(&self.creds), key).sign(SIGN_FOR);
        self.send("DeleteObject", self.http.delete(url)).await.map(|_| ())
    }
}

/// Decodes a key of a ListObjectsV2 answer: rusty-s3 always asks for `encoding-type=url`, so servers return
/// keys percent-encoded (`:` as `%3A`, a space as `+`).
fn decode_key(key: &str) -> String {
    let plus_as_space = key.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

/// An upload fed in pieces. Small objects go in one PUT; larger ones become a multipart upload whose parts are
/// sent as they fill. Nothing is visible under the key until [`Upload::finish`]; [`Upload::abort`] discards.
#[derive(Debug)]
pub struct Upload<'a> {
    client: &'a S3Client,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    etags: Vec<String>,
}

impl<'a> Upload<'a> {
    /// Starts an upload to `key`.
    pub fn new(client: &'a S3Client, key: &str) -> Self {
        Self {
            client,
            key: key.to_owned(),
            buf: Vec::new(),
            upload_id: None,
            etags: Vec::new(),
        }
    }

    /// Appends bytes; sends a part whenever `PART_SIZE` bytes are buffered.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), S3Error> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= PART_SIZE {
            let rest = self.buf.split_off(PART_SIZE);
            let part = std::mem::replace(&mut self.buf, rest);
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Vec<u8>) -> Result<(), S3Error> {
        let c = self.client;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let url = CreateMultipartUpload::new(&c.bucket, Some(&c.creds), &self.key).sign(SIGN_FOR);
                let resp = c.send("CreateMultipartUpload", c.http.post(url)).await?;
                let text = resp.text().await.map_err(|e| S3Error::Request {
                    action: "CreateMultipartUpload",
                    message: e.to_string(),
                })?;
                let parsed = CreateMultipartUpload::parse_response(&text).map_err(|e| S3Error::Request {
                    action: "CreateMultipartUpload",
                    message: e.to_string(),
                })?;
                let id = parsed.upload_id().to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = u16::try_from(self.etags.len() + 1).map_err(|_| S3Error::Request {
            action: "UploadPart",
            message: "too many parts".into(),
        })?;
        let url = c
            .bucket
            .upload_part(Some(&c.creds), &self.key, number, &upload_id)
            .sign(SIGN_FOR);
        let resp = c.send("UploadPart", c.http.put(url).body(part)).await?;
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| S3Error::Request {
                action: "UploadPart",
                message: "no ETag in the response".into(),
            })?;
        self.etags.push(etag);
        Ok(())
    }

    /// Bytes accepted so far.
    pub fn is_multipart(&self) -> bool {
        self.upload_id.is_some()
    }

    /// Makes the object visible.
    pub async fn finish(mut self) -> Result<(), S3Error> {
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buf);
            return self.client.put(&self.key, body).await;
        }
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            self.send_part(rest).await?;
        }
        let c = self.client;
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let action = CompleteMultipartUpload::new(
            &c.bucket,
            Some(&c.creds),
            &self.key,
            &upload_id,
            self.etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGN_FOR);
        let body = action.body();
        let resp = c
            .send("CompleteMultipartUpload", c.http.post(url).body(body))
            .await?;
        // S3 may answer 200 with an <Error> body.
        let text = resp.text().await.unwrap_or_default();
        if text.contains("<Error>") {
            return Err(S3Error::Request {
                action: "CompleteMultipartUpload",
                message: text.chars().take(300).collect(),
            });
        }
        Ok(())
    }

    /// Discards what was sent.
    pub async fn abort(self) {
        if let Some(id) = &self.upload_id {
            let c = self.client;
            let url = c
                .bucket
                .abort_multipart_upload(Some(&c.creds), &self.key, id)
                .sign(SIGN_FOR);
            if let Err(e) = c.send("AbortMultipartUpload", c.http.delete(url)).await {
                tracing::warn!(key = %self.key, error = %e, "failed to abort the multipart upload");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_key;

    #[test]
    fn listed_keys_are_percent_decoded_with_plus_as_space() {
        assert_eq!(
            decode_key("backup-ns-pvc-2026-12-02T06%3A14%3A03Z.tar.gz"),
            "backup-ns-pvc-2026-12-02T06:14:03Z.tar.gz"
        );
        assert_eq!(decode_key("a+b%2Bc"), "a b+c");
        assert_eq!(decode_key("plain/key.tar.gz"), "plain/key.tar.gz");
    }
}
