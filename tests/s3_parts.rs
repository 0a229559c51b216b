//! Multipart uploads to S3 (moto; s3s-fs too) with growing parts: a 40 MB
//! upload of unknown size arrives intact in 6 parts (5, 5, 5, 5, 10 and the
//! rest MiB: the S3 ETag of a multipart object ends in its part count), where
//! the memory budget cannot pay for bigger parts they stay at 5 MiB (8 parts),
//! and an aborted one leaves the file it would have replaced.

mod common;

use bytes::Bytes;
use futures::TryStreamExt;
use wharf::budget::Budget;
use wharf::vfs::Vfs;

/// Uploads `data` in 32 KiB writes (as SFTP does), returns the object's ETag.
async fn upload(vfs: &Vfs, data: &[u8]) -> String {
    let path = common::p("/big.bin");
    let mut w = vfs.create(&path).await.unwrap();
    for chunk in data.chunks(32 * 1024) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(w.close().await.unwrap(), data.len() as u64);
    let entry = vfs.stat(&path).await.unwrap();
    assert_eq!(entry.size, data.len() as u64);
    let reader = vfs.open(&path).await.unwrap();
    let mut stream = reader.stream(0..reader.size()).await.unwrap();
    let mut back = Vec::with_capacity(data.len());
    while let Some(c) = stream.try_next().await.unwrap() {
        back.extend_from_slice(&c);
    }
    assert_eq!(common::sha256(&back), common::sha256(data));
    entry.etag.expect("S3 reports an ETag")
}

fn parts(etag: &str) -> &str {
    etag.trim_matches('"')
        .rsplit_once('-')
        .map_or("1", |(_, n)| n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_grow_with_the_upload() {
    let b = common::backend("s3");
    let data = common::pattern(40_000_000, 11);
    let etag = upload(&common::vfs_on(&b), &data).await;
    assert_eq!(parts(&etag), "6", "{etag}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_stay_small_when_the_budget_is_tight() {
    let b = common::backend("s3");
    let data = common::pattern(40_000_000, 12);
    // Room for 5 MiB parts in flight, not for 10 MiB ones.
    let vfs = common::vfs_on(&b).with_budget(Budget::new(30 << 20));
    let etag = upload(&vfs, &data).await;
    assert_eq!(parts(&etag), "8", "{etag}");
    assert_eq!(vfs.budget().available(), 30 << 20, "all given back");
}

/// The same growing parts on s3s-fs (a second S3 implementation): CreateMultipartUpload,
/// UploadPart and CompleteMultipartUpload as another server reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_grow_with_the_upload_on_s3s() {
    let b = common::backend("s3s");
    let data = common::pattern(40_000_000, 13);
    let etag = upload(&common::vfs_on(&b), &data).await;
    assert_eq!(parts(&etag), "6", "{etag}");
}

/// An upload aborted after two parts reached the server (AbortMultipartUpload)
/// leaves the file it would have replaced as it was, and no other object.
async fn an_aborted_multipart_upload_leaves_the_old_file(backend: &str) {
    let b = common::backend(backend);
    let vfs = common::vfs_on(&b);
    let path = common::p("/doc.bin");
    let old = common::pattern(1_000_000, 14);
    vfs.write_all(&path, Bytes::from(old.clone()))
        .await
        .unwrap();
    let mut w = vfs.create(&path).await.unwrap();
    for chunk in common::pattern(12_000_000, 15).chunks(32 * 1024) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    // s3s-fs keeps an upload in progress as `.upload-<id>.json` in its folder:
    // one is open before the abort, none after (on moto, only what is read back).
    let uploads = || -> usize {
        b.dir.as_ref().map_or(0, |d| {
            std::fs::read_dir(d.path().join("s3s"))
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with(".upload-")
                })
                .count()
        })
    };
    if backend == "s3s" {
        assert_eq!(uploads(), 1, "a multipart upload is open");
    }
    w.abort().await.unwrap();
    assert_eq!(uploads(), 0, "the multipart upload is aborted");
    let reader = vfs.open(&path).await.unwrap();
    assert_eq!(reader.size(), old.len() as u64);
    let back: Vec<Bytes> = reader
        .stream(0..reader.size())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(common::sha256(&back.concat()), common::sha256(&old));
    let names: Vec<String> = vfs
        .list(&common::p("/"))
        .await
        .unwrap()
        .map_ok(|e| e.name().to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names, ["doc.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_multipart_upload_leaves_the_old_file_on_s3() {
    an_aborted_multipart_upload_leaves_the_old_file("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_multipart_upload_leaves_the_old_file_on_s3s() {
    an_aborted_multipart_upload_leaves_the_old_file("s3s").await;
}
