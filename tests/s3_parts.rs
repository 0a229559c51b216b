//! Multipart uploads to S3 (moto) with growing parts: a 40 MB upload of unknown
//! size arrives intact in 6 parts (5, 5, 5, 5, 10 and the rest MiB: the S3
//! ETag of a multipart object ends in its part count), and where the memory
//! budget cannot pay for bigger parts they stay at 5 MiB (8 parts).

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
