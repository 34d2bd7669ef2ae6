// REST lookups at a ramping arrival rate: products (list, by id), recommendations (per member,
// similar-to-product) and product search at a constant 20 req/s. Thresholds are the seed's service levels (DESIGN.md).
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, memberTokens, productIds, pick, scaled, QUERIES } from './lib.js';

export const options = {
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    products: {
      executor: 'ramping-arrival-rate',
      exec: 'products',
      startRate: scaled(10),
      timeUnit: '1s',
      preAllocatedVUs: scaled(20),
      maxVUs: scaled(200),
      stages: [
        { target: scaled(100), duration: '30s' },
        { target: scaled(200), duration: '30s' },
        { target: scaled(200), duration: '30s' },
      ],
    },
    search: {
      executor: 'constant-arrival-rate',
      exec: 'search',
      rate: scaled(20),
      timeUnit: '1s',
      duration: '90s',
      preAllocatedVUs: scaled(10),
      maxVUs: scaled(100),
    },
    recommendations: {
      executor: 'ramping-arrival-rate',
      exec: 'recommendations',
      startRate: scaled(5),
      timeUnit: '1s',
      preAllocatedVUs: scaled(20),
      maxVUs: scaled(200),
      stages: [
        { target: scaled(50), duration: '30s' },
        { target: scaled(50), duration: '30s' },
        { target: scaled(200), duration: '30s' },
      ],
    },
  },
  thresholds: {
    'http_req_duration{kind:products}': ['p(95)<200'],
    'http_req_duration{kind:recommendations}': ['p(90)<1000', 'p(95)<1000'],
    'http_req_duration{kind:similar}': ['p(95)<200'],
    'http_req_duration{kind:search}': ['p(95)<100'],
    'checks': ['rate>0.99'],
    'dropped_iterations': ['count<100'],
  },
};

export function setup() {
  return { tokens: memberTokens(50), products: productIds(300) };
}

export function products(data) {
  const res =
    Math.random() < 0.5
      ? http.get(`${BASE_URL}/api/products?limit=20&category=${pick(['outdoor', 'fashion', 'shoes', 'electronics'])}`, { tags: { kind: 'products' } })
      : http.get(`${BASE_URL}/api/products/${pick(data.products)}`, { tags: { kind: 'products' } });
  check(res, { 'products 200': (r) => r.status === 200 });
}

// Product search (BM25 + kNN; the query embeddings are Redis hits after their first use).
export function search() {
  const res = http.get(`${BASE_URL}/api/search/products?limit=10&q=${encodeURIComponent(pick(QUERIES))}`, {
    tags: { kind: 'search' },
  });
  check(res, { 'search 200': (r) => r.status === 200 });
}

export function recommendations(data) {
  if (Math.random() < 0.2) {
    const res = http.get(`${BASE_URL}/api/products/${pick(data.products)}/similar?limit=10`, { tags: { kind: 'similar' } });
    check(res, { 'similar 200': (r) => r.status === 200 });
    return;
  }
  const member = pick(data.tokens);
  // Most lookups repeat a member's few queries (cache hits), some are new (misses).
  const q = Math.random() < 0.8 ? QUERIES[0] : pick(QUERIES);
  const res = http.get(
    `${BASE_URL}/api/recommendations/${member.member_id}?limit=10&q=${encodeURIComponent(q)}`,
    { headers: { Authorization: `Bearer ${member.token}` }, tags: { kind: 'recommendations' } },
  );
  check(res, { 'recommendations 200': (r) => r.status === 200 });
}
