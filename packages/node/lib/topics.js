'use strict';
// Topics in the JavaScript layer: argument checks and the error classes of
// the native topic calls (Socket#subscribe, App#publish, ...).
const { native } = require('./native');
const { WebSocketMessage } = require('./message');
const errors = require('./errors');

const ENOTFOUND = -20;
const EINVAL = -1;
const MAX_TOPIC_LENGTH = 256;

function checkTopic(topic) {
  if (typeof topic !== 'string') throw new TypeError(`topic must be a string, not ${typeof topic}`);
  return topic;
}

/** The error of a failed topic call (a negative core code). */
function topicError(rc) {
  const message = rc === EINVAL ? `a topic is 1..${MAX_TOPIC_LENGTH} bytes of UTF-8`
    : native.errorMessage(rc);
  return errors.fromInfo({ code: native.errorName(rc), errno: rc, message });
}

/** A count from the native call, or throw its error (a code or an info object). */
function countOf(r) {
  if (typeof r === 'number') {
    if (r < 0) throw topicError(r);
    return r;
  }
  if (r.errno === EINVAL) throw topicError(EINVAL);
  throw errors.fromInfo(r);
}

/** server.publish / publishValue by the message's type. */
function publish(server, topic, message, exclude) {
  checkTopic(topic);
  if (message instanceof WebSocketMessage) message = message.data;
  if (typeof message === 'string' || message instanceof Uint8Array) {
    return countOf(server.publish(topic, message, exclude));
  }
  if (message instanceof ArrayBuffer) {
    return countOf(server.publish(topic, new Uint8Array(message), exclude));
  }
  return countOf(server.publishValue(topic, message, exclude));
}

const ESTATE = -7;
const MAX_HISTORY = 1000000;

function configError(message) {
  return errors.fromInfo({ code: 'EINVAL', errno: EINVAL, message });
}

/** conn.subscribeSince with the package's checks and errors. */
function subscribeSince(conn, topic, since) {
  checkTopic(topic);
  if (typeof since !== 'string') throw new TypeError(`since must be a string, not ${typeof since}`);
  const r = conn.subscribeSince(topic, since);
  if (typeof r !== 'number') return r;
  if (r === EINVAL) {
    throw configError(`${topic}: no history for this topic (app.topic(...)), or not a topic of 1..${MAX_TOPIC_LENGTH} bytes`);
  }
  throw topicError(r);
}

/** server.topicHistory with the package's checks and errors (ttl in seconds). */
function topicHistory(server, pattern, history, ttl) {
  checkTopic(pattern);
  if (!Number.isInteger(history) || history < 1 || history > MAX_HISTORY) {
    throw configError(`history must be an integer in 1..${MAX_HISTORY}, not ${history}`);
  }
  if (ttl !== undefined && ttl !== null && !(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl))) {
    throw configError(`ttl must be a positive number of seconds or undefined, not ${ttl}`);
  }
  const ttlMs = ttl === undefined || ttl === null ? 0 : Math.max(1, Math.round(ttl * 1000));
  const rc = server.topicHistory(pattern, history, ttlMs);
  if (rc === ESTATE) throw configError(`${pattern} has history already`);
  if (rc === EINVAL) throw configError(`history needs a pattern of 1..${MAX_TOPIC_LENGTH} bytes`);
  if (rc !== 0) throw topicError(rc);
}

module.exports = { ENOTFOUND, checkTopic, topicError, countOf, publish, subscribeSince, topicHistory };
