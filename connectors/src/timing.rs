//! Times the storage calls that are one request each (stat, create_dir, rename,
//! presign) and hands the duration to a process-wide hook (wharf's metrics; none
//! installed: nothing happens). Streams (read, write, list, delete) are not timed
//! here: their cost is spread over the transfer.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opendal::raw::*;
use opendal::*;

/// Receives `(connector, operation, duration)`.
pub type TimingHook = fn(&str, &'static str, Duration);

static HOOK: OnceLock<TimingHook> = OnceLock::new();

/// Installs the hook (the first one wins).
pub fn set_timing_hook(hook: TimingHook) {
    let _ = HOOK.set(hook);
}

/// The layer; one per connector, named after it.
#[derive(Debug, Clone)]
pub struct TimingLayer {
    pub connector: Arc<str>,
}

impl Layer for TimingLayer {
    fn apply_service(&self, inner: Servicer) -> Servicer {
        Arc::new(TimingService {
            inner,
            connector: self.connector.clone(),
        })
    }
}

#[derive(Debug)]
pub struct TimingService {
    inner: Servicer,
    connector: Arc<str>,
}

impl TimingService {
    async fn timed<T>(&self, op: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let out = fut.await;
        if let Some(hook) = HOOK.get() {
            hook(&self.connector, op, started.elapsed());
        }
        out
    }
}

use std::future::Future;

impl Service for TimingService {
    type Reader = oio::Reader;
    type Writer = oio::Writer;
    type Lister = oio::Lister;
    type Deleter = oio::Deleter;
    type Copier = oio::Copier;
    type Composer = oio::Composer;

    fn info(&self) -> ServiceInfo {
        self.inner.info()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn create_dir(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpCreateDir,
    ) -> Result<RpCreateDir> {
        self.timed("create_dir", self.inner.create_dir(ctx, path, args))
            .await
    }

    async fn stat(&self, ctx: &OperationContext, path: &str, args: OpStat) -> Result<RpStat> {
        self.timed("stat", self.inner.stat(ctx, path, args)).await
    }

    fn read(&self, ctx: &OperationContext, path: &str, args: OpRead) -> Result<Self::Reader> {
        self.inner.read(ctx, path, args)
    }

    fn write(&self, ctx: &OperationContext, path: &str, args: OpWrite) -> Result<Self::Writer> {
        self.inner.write(ctx, path, args)
    }

    fn delete(&self, ctx: &OperationContext) -> Result<Self::Deleter> {
        self.inner.delete(ctx)
    }

    fn list(&self, ctx: &OperationContext, path: &str, args: OpList) -> Result<Self::Lister> {
        self.inner.list(ctx, path, args)
    }

    fn copy(
        &self,
        ctx: &OperationContext,
        from: &str,
        to: &str,
        args: OpCopy,
    ) -> Result<Self::Copier> {
        self.inner.copy(ctx, from, to, args)
    }

    fn compose(&self, ctx: &OperationContext, to: &str, args: OpCompose) -> Result<Self::Composer> {
        self.inner.compose(ctx, to, args)
    }

    async fn rename(
        &self,
        ctx: &OperationContext,
        from: &str,
        to: &str,
        args: OpRename,
    ) -> Result<RpRename> {
        self.timed("rename", self.inner.rename(ctx, from, to, args))
            .await
    }

    async fn restore(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpRestore,
    ) -> Result<RpRestore> {
        self.inner.restore(ctx, path, args).await
    }

    async fn presign(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpPresign,
    ) -> Result<RpPresign> {
        self.timed("presign", self.inner.presign(ctx, path, args))
            .await
    }
}
