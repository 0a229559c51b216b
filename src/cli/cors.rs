//! `wharf connector cors NAME [--origin URL]`: the CORS rule a bucket needs so
//! that pages served from wharf's origin (`[links] base_url`) may read and
//! write it directly from the browser (direct downloads fetched by scripts,
//! direct uploads): methods GET, HEAD and PUT, any request header, and `ETag`
//! exposed (a multipart upload needs each part's tag).
//!
//! Printed, not applied: OpenDAL (0.59) has no bucket-configuration call, and
//! the rule is an operator's decision on their bucket. S3: the JSON for
//! `PutBucketCors` (`aws s3api put-bucket-cors --cors-configuration file://…`);
//! GCS: the JSON for `gcloud storage buckets update --cors-file`; Azure Blob:
//! the `<Cors>` element of the Blob service properties (direct uploads PUT
//! blocks there; the tests set it on Azurite as printed).

use serde_json::json;

use crate::config::Config;
use crate::error::{Error, Result};

/// What browsers may do against the bucket.
const METHODS: [&str; 3] = ["GET", "HEAD", "PUT"];
/// How long a browser may cache the preflight answer.
const MAX_AGE_SECS: u32 = 3600;

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> Result<String> {
    let bad = || Error::invalid(format!("{url:?} is not an http(s) URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(bad());
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// The rule text for a connector of `scheme`, allowing `origin`.
pub fn rule(scheme: &str, origin: &str) -> Result<String> {
    match scheme {
        "s3" => Ok(pretty(json!({
            "CORSRules": [{
                "AllowedOrigins": [origin],
                "AllowedMethods": METHODS,
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": MAX_AGE_SECS,
            }]
        }))),
        "gcs" => Ok(pretty(json!([{
            "origin": [origin],
            "method": METHODS,
            "responseHeader": ["Content-Type", "Content-Range", "ETag"],
            "maxAgeSeconds": MAX_AGE_SECS,
        }]))),
        "azblob" => Ok(format!(
            "<Cors>\n  <CorsRule>\n    <AllowedOrigins>{origin}</AllowedOrigins>\n    \
             <AllowedMethods>{}</AllowedMethods>\n    <AllowedHeaders>*</AllowedHeaders>\n    \
             <ExposedHeaders>ETag</ExposedHeaders>\n    <MaxAgeInSeconds>{MAX_AGE_SECS}</MaxAgeInSeconds>\n  \
             </CorsRule>\n</Cors>",
            METHODS.join(",")
        )),
        other => Err(Error::invalid(format!(
            "scheme {other:?} is not reached by browsers directly: no CORS rule to set (s3, gcs and azblob have one)"
        ))),
    }
}

/// A JSON value as text (a `Value` always serialises).
fn pretty(v: serde_json::Value) -> String {
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// Where to put the printed rule, for the operator (standard error).
fn how(scheme: &str, bucket: &str) -> String {
    match scheme {
        "s3" => format!(
            "save the JSON and apply it: aws s3api put-bucket-cors --bucket {bucket} --cors-configuration file://cors.json"
        ),
        "gcs" => format!(
            "save the JSON and apply it: gcloud storage buckets update gs://{bucket} --cors-file=cors.json"
        ),
        _ => "set it in the storage account's Blob service properties (Set Blob Service Properties; portal: Resource sharing (CORS); or az storage cors add --services b --methods GET HEAD PUT --origins ORIGIN --allowed-headers '*' --exposed-headers ETag --max-age 3600)".into(),
    }
}

pub fn run(config: &Config, name: &str, origin: Option<&str>) -> Result<()> {
    let spec = config
        .connectors
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Error::not_found(format!("no connector named {name:?}")))?;
    let origin = match origin {
        Some(o) => origin_of(o)?,
        None if !config.links.base_url.is_empty() => origin_of(&config.links.base_url)?,
        None => {
            return Err(Error::invalid(
                "no origin: set [links] base_url or pass --origin URL",
            ))
        }
    };
    println!("{}", rule(&spec.scheme, &origin)?);
    let bucket = spec
        .options
        .get("bucket")
        .or_else(|| spec.options.get("container"))
        .map_or("BUCKET", String::as_str);
    eprintln!(
        "CORS rule for connector {name} ({}) allowing {origin}; wharf does not apply it: {}",
        spec.scheme,
        how(&spec.scheme, bucket)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://Files.Example.com/l/x?y").unwrap(),
            "https://files.example.com"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(origin_of("ftp://x").is_err());
        assert!(origin_of("https://").is_err());
        assert!(origin_of("https://u@evil").is_err());
    }

    #[test]
    fn rules_by_service() {
        let s3: serde_json::Value =
            serde_json::from_str(&rule("s3", "https://a.example").unwrap()).unwrap();
        assert_eq!(s3["CORSRules"][0]["AllowedOrigins"][0], "https://a.example");
        let gcs: serde_json::Value =
            serde_json::from_str(&rule("gcs", "https://a.example").unwrap()).unwrap();
        assert_eq!(gcs[0]["origin"][0], "https://a.example");
        assert!(rule("azblob", "https://a.example")
            .unwrap()
            .contains("<AllowedOrigins>https://a.example</AllowedOrigins>"));
        assert!(rule("fs", "https://a.example").is_err());
    }
}
