// WebSocket chat: up to 1,000 concurrent sessions (SCALE=1), each sending a message every
// MESSAGE_INTERVAL seconds (default 10 → 100 messages/s at 1,000 sessions) and timing
// message → ack and message → reply. Thresholds: the reply p95 < 300 ms with the local
// fallback, and the seed's 100 messages/s. Protocol: docs/chat-protocol.md.
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { WS_URL, memberTokens, scaled, QUERIES, pick } from './lib.js';

const ackTime = new Trend('chat_ack_ms', true);
const replyTime = new Trend('chat_reply_ms', true);
const replies = new Counter('chat_replies');
const errors = new Counter('chat_error_frames');
const SESSIONS = scaled(1000);
const INTERVAL_S = parseFloat(__ENV.MESSAGE_INTERVAL || '10');
const HOLD_S = parseInt(__ENV.HOLD_SECONDS || '60', 10);

export const options = {
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    chat: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { target: SESSIONS, duration: '30s' },
        { target: SESSIONS, duration: `${HOLD_S}s` },
        { target: 0, duration: '10s' },
      ],
      gracefulRampDown: '15s',
    },
  },
  thresholds: {
    chat_ack_ms: ['p(95)<200'],
    chat_reply_ms: ['p(95)<300'],
    chat_error_frames: ['count<10'],
    ws_connecting: ['p(95)<1000'],
  },
};

export function setup() {
  // Client ids are unique per member (a repeated id is a retry): this run's prefix.
  return { tokens: memberTokens(Math.min(SESSIONS, 200)), run: Date.now().toString(36) };
}

export default function (data) {
  const member = data.tokens[(__VU - 1) % data.tokens.length];
  const url = `${WS_URL}/ws?token=${encodeURIComponent(member.token)}`;
  const sent = {};
  const res = ws.connect(url, {}, (socket) => {
    let seq = 0;
    const send = () => {
      const clientId = `${data.run}-${__VU}-${__ITER}-${seq++}`;
      sent[clientId] = Date.now();
      socket.send(JSON.stringify({ type: 'message', client_id: clientId, text: pick(QUERIES) }));
    };
    socket.on('open', () => {
      // Spread the first messages so sessions do not send in lockstep.
      socket.setTimeout(send, Math.random() * INTERVAL_S * 1000);
      socket.setInterval(send, INTERVAL_S * 1000);
      socket.setTimeout(() => socket.close(), (HOLD_S + 20) * 1000);
    });
    socket.on('message', (raw) => {
      const frame = JSON.parse(raw);
      const started = sent[frame.client_id];
      if (frame.type === 'ack' && started) ackTime.add(Date.now() - started);
      if (frame.type === 'reply' && started) {
        replyTime.add(Date.now() - started);
        replies.add(1);
        delete sent[frame.client_id];
      }
      if (frame.type === 'error') errors.add(1);
    });
  });
  check(res, { 'upgraded (101)': (r) => r && r.status === 101 });
}
