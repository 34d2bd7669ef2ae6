//! A bounded in-process map from query text to its embedding, in front of the Redis
//! embedding cache. Shoppers repeat a few queries; the recommender then needs neither a
//! Redis round trip nor, when Redis is slow under load and its lookup times out, an encoder
//! pass per list. The encoder is deterministic, so a remembered vector is the one Redis or the
//! encoder would give.
//!
//! Two generations bound it: lookups fill the current one, a hit in the previous one is
//! promoted, and when the current one is full it becomes the previous one (dropping the
//! older). Recently used texts survive; memory stays below 2 × `capacity` entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Generations {
    current: HashMap<String, Arc<Vec<f32>>>,
    previous: HashMap<String, Arc<Vec<f32>>>,
}

/// Cloneable handle; clones share the entries.
#[derive(Clone)]
pub struct QueryEmbeddingCache {
    capacity: usize,
    generations: Arc<Mutex<Generations>>,
}

impl QueryEmbeddingCache {
    /// Holds about `capacity` recent texts; 0 turns it off.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            generations: Arc::new(Mutex::new(Generations::default())),
        }
    }

    pub fn get(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        if self.capacity == 0 {
            return None;
        }
        let mut generations = self
            .generations
            .lock()
            .expect("query cache lock not poisoned");
        if let Some(vector) = generations.current.get(text) {
            return Some(vector.clone());
        }
        let vector = generations.previous.remove(text)?;
        Self::insert_into(
            &mut generations,
            self.capacity,
            text.to_string(),
            vector.clone(),
        );
        Some(vector)
    }

    pub fn insert(&self, text: String, vector: Vec<f32>) {
        if self.capacity == 0 || vector.is_empty() {
            return;
        }
        let mut generations = self
            .generations
            .lock()
            .expect("query cache lock not poisoned");
        Self::insert_into(&mut generations, self.capacity, text, Arc::new(vector));
    }

    fn insert_into(
        generations: &mut Generations,
        capacity: usize,
        text: String,
        vector: Arc<Vec<f32>>,
    ) {
        if generations.current.len() >= capacity && !generations.current.contains_key(&text) {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(text, vector);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_texts_and_forgets_old_ones() {
        let cache = QueryEmbeddingCache::new(2);
        cache.insert("a".into(), vec![1.0]);
        cache.insert("b".into(), vec![2.0]);
        // Full: "c" starts a new generation; "a" and "b" are still found (and "a" promoted).
        cache.insert("c".into(), vec![3.0]);
        assert_eq!(cache.get("a").as_deref(), Some(&vec![1.0]));
        // "d" fills the generation {c, a} over: "b", unused since, is gone.
        cache.insert("d".into(), vec![4.0]);
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a").as_deref(), Some(&vec![1.0]));
        assert_eq!(cache.get("d").as_deref(), Some(&vec![4.0]));
    }

    #[test]
    fn a_zero_capacity_cache_holds_nothing() {
        let cache = QueryEmbeddingCache::new(0);
        cache.insert("a".into(), vec![1.0]);
        assert_eq!(cache.get("a"), None);
    }
}
