//! The public pages' render cache: one rendered status page per language (and one copy of each
//! machine-readable document, by path), valid while the store's
//! public generation ([`crate::store::port::Components::public_generation`]) and the clock's second are
//! those it was rendered at. So a finished write is never served stale (the generation moves
//! after it), the time-dependent parts (today's uptime bar) are at most a second old, and a
//! crowd reading the page during an incident costs one render per language per second.

use axum::body::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A rendered page (or public document) and its ETag.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub html: Bytes,
    pub etag: String,
    pub content_type: &'static str,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    second: i64,
    page: Rendered,
}

/// Shared by the clones of one server's settings; a new server starts empty.
#[derive(Debug, Clone, Default)]
pub struct PageCache(Arc<Mutex<HashMap<&'static str, Entry>>>);

impl PageCache {
    /// The page for `key` rendered at (`generation`, `second`), rendering it with `render` when
    /// the cached one is older. A failed render is not cached.
    pub async fn get_or_render<E, F>(
        &self,
        key: &'static str,
        generation: u64,
        second: i64,
        render: impl FnOnce() -> F,
    ) -> Result<Rendered, E>
    where
        F: Future<Output = Result<String, E>>,
    {
        self.get_or_make(key, generation, second, || async {
            render()
                .await
                .map(|html| ("text/html; charset=utf-8", html.into_bytes()))
        })
        .await
    }

    /// [`PageCache::get_or_render`] for any document: `make` gives its content type and bytes.
    /// The machine-readable documents ([`super::documents`]) are cached by their path.
    pub async fn get_or_make<E, F>(
        &self,
        key: &'static str,
        generation: u64,
        second: i64,
        make: impl FnOnce() -> F,
    ) -> Result<Rendered, E>
    where
        F: Future<Output = Result<(&'static str, Vec<u8>), E>>,
    {
        {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = map.get(key) {
                if e.generation == generation && e.second == second {
                    return Ok(e.page.clone());
                }
            }
        }
        // Rendered outside the lock: readers of other languages are not held up.
        let (content_type, bytes) = make().await?;
        let page = Rendered {
            etag: super::conditional::etag_of(&bytes),
            html: Bytes::from(bytes),
            content_type,
        };
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            key,
            Entry {
                generation,
                second,
                page: page.clone(),
            },
        );
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_generation_or_second_renders_again() {
        let c = PageCache::default();
        let renders = std::cell::Cell::new(0);
        let get = |g, s| {
            let (c, renders) = (&c, &renders);
            async move {
                c.get_or_render::<(), _>("en", g, s, || async move {
                    renders.set(renders.get() + 1);
                    Ok(format!("page {g} {s}"))
                })
                .await
                .unwrap()
            }
        };
        assert_eq!(get(1, 10).await.html, "page 1 10");
        assert_eq!(get(1, 10).await.html, "page 1 10");
        assert_eq!(get(2, 10).await.html, "page 2 10");
        assert_eq!(get(2, 11).await.html, "page 2 11");
        assert_eq!(renders.get(), 3);
    }
}
