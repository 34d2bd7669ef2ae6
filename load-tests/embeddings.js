// The embedding endpoints: /embed (mostly cache misses: unique texts) and /batch-embed.
// Threshold: the seed's embedding p95 < 500 ms.
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, scaled, QUERIES, pick } from './lib.js';

export const options = {
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    embed: {
      executor: 'ramping-arrival-rate',
      exec: 'embed',
      startRate: scaled(5),
      timeUnit: '1s',
      preAllocatedVUs: scaled(20),
      maxVUs: scaled(100),
      stages: [
        { target: scaled(50), duration: '30s' },
        { target: scaled(100), duration: '30s' },
      ],
    },
    batch: {
      executor: 'constant-arrival-rate',
      exec: 'batch',
      rate: scaled(2),
      timeUnit: '1s',
      duration: '60s',
      preAllocatedVUs: scaled(5),
      maxVUs: scaled(20),
    },
  },
  thresholds: {
    'http_req_duration{kind:embed}': ['p(95)<500'],
    'http_req_duration{kind:batch}': ['p(95)<2000'],
    'checks': ['rate>0.99'],
  },
};

const params = (kind) => ({ headers: { 'Content-Type': 'application/json' }, tags: { kind } });

export function embed() {
  const text = `${pick(QUERIES)} #${__VU}-${__ITER}`;
  const res = http.post(`${BASE_URL}/embed`, JSON.stringify({ text }), params('embed'));
  check(res, { 'embed 200': (r) => r.status === 200 });
}

export function batch() {
  const texts = Array.from({ length: 32 }, (_, i) => `${pick(QUERIES)} batch ${__VU}-${__ITER}-${i}`);
  const res = http.post(`${BASE_URL}/batch-embed`, JSON.stringify({ texts }), params('batch'));
  check(res, { 'batch 200': (r) => r.status === 200 });
}
