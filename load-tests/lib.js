// Shared helpers for the k6 scripts: base URL, tokens, a product id pool.
import http from 'k6/http';

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
export const WS_URL = BASE_URL.replace(/^http/, 'ws');
export const ADMIN_TOKEN = __ENV.ADMIN_TOKEN || '';
// Multiplies every rate/VU target, so one script serves a smoke run (0.1) and the real one (1).
export const SCALE = parseFloat(__ENV.SCALE || '1');

export function scaled(n) {
  return Math.max(1, Math.round(n * SCALE));
}

// Member tokens from the demo endpoint (the service must run with security.demo_tokens on).
export function memberTokens(count) {
  const tokens = [];
  for (let i = 0; i < count; i++) {
    const res = http.post(`${BASE_URL}/api/demo/token`, JSON.stringify({ member_id: `load-${i}` }), {
      headers: { 'Content-Type': 'application/json' },
    });
    if (res.status !== 200) {
      throw new Error(`demo token: ${res.status} ${res.body}`);
    }
    tokens.push(res.json());
  }
  return tokens;
}

// Up to `limit` product ids from the catalog (keyset pages of 100).
export function productIds(limit) {
  const ids = [];
  let after = '';
  while (ids.length < limit) {
    const res = http.get(`${BASE_URL}/api/products?limit=100${after ? `&after=${after}` : ''}`);
    if (res.status !== 200) throw new Error(`products: ${res.status}`);
    const body = res.json();
    for (const p of body.items) ids.push(p.id);
    if (!body.next_after) break;
    after = body.next_after;
  }
  return ids.slice(0, limit);
}

export function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

export const QUERIES = [
  '겨울 패딩 10만원 이하로 추천해줘',
  '방수 등산화 찾고 있어요',
  '빨간색 말고 검정 운동화',
  'lightweight waterproof hiking jacket under $100',
  'wireless noise cancelling headphones',
  '5만원대 스킨케어 세트',
  'running shoes for beginners',
  '캠핑용 의자 가벼운 거',
  'a warm fleece for autumn hikes',
  '선물용 향수 추천',
];
