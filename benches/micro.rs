//! Micro benchmarks of the per-key steps: generation, format check, hashing, lookup.
//!
//! Run with `cargo bench --bench micro`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keygate::{Identity, KeyFormat, KeyGenerator, KeyHasher, MemoryStore, StoredKey};

fn micro(c: &mut Criterion) {
    let generator = KeyGenerator::new(KeyFormat::with_prefix("kg_live").unwrap());
    let format = generator.format().clone();
    let key = generator.generate().unwrap();
    let text = key.expose_secret().to_owned();

    c.bench_function("generate", |b| b.iter(|| generator.generate().unwrap()));
    c.bench_function("check (prefix, length, charset, crc32)", |b| {
        b.iter(|| format.check(black_box(&text)).unwrap())
    });

    let sha = KeyHasher::sha256();
    let hmac = KeyHasher::hmac_sha256(&[7; 32]).unwrap();
    c.bench_function("hash sha256", |b| b.iter(|| sha.hash(black_box(&key))));
    c.bench_function("hash hmac-sha256", |b| {
        b.iter(|| hmac.hash(black_box(&key)))
    });

    let store = MemoryStore::new();
    for _ in 0..10_000 {
        let other = generator.generate().unwrap();
        let identity = Identity::new(other.id(), "user");
        store
            .insert_key(StoredKey::new(sha.hash(&other), identity))
            .unwrap();
    }
    store
        .insert_key(StoredKey::new(
            sha.hash(&key),
            Identity::new(key.id(), "user"),
        ))
        .unwrap();
    let id = key.id();
    c.bench_function("MemoryStore::get (10k keys)", |b| {
        b.iter(|| store.get(black_box(&id)).unwrap())
    });
}

criterion_group!(benches, micro);
criterion_main!(benches);
