// Issue 3's latency target: `POST /embed` p95 < 50 ms with 20 concurrent clients, each sending
// one unique short text after another (closed loop, so the service sets the pace). Texts are
// ESCI-like product titles with a short unique suffix, so the Redis cache never answers.
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, QUERIES, pick } from './lib.js';

export const options = {
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    embed: {
      executor: 'constant-vus',
      vus: parseInt(__ENV.CLIENTS || '20', 10),
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    'http_req_duration{kind:embed}': ['p(95)<50'],
    'checks': ['rate>0.99'],
  },
};

const RUN = Date.now().toString(36);

export default function () {
  const text = `${pick(QUERIES)} ${RUN}${__VU}x${__ITER}`;
  const res = http.post(`${BASE_URL}/embed`, JSON.stringify({ text }), {
    headers: { 'Content-Type': 'application/json' },
    tags: { kind: 'embed' },
  });
  check(res, { 'embed 200': (r) => r.status === 200 });
}
