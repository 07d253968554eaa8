// Structured outputs through real npm clients against pagoda: the official
// openai package (beta.chat.completions.parse with zodResponseFormat, json_object,
// a streamed json_schema, response_format on /v1/completions), LangChain.js
// (ChatOpenAI.withStructuredOutput, method "jsonSchema"), and a schema the
// server cannot honour (HTTP 400, param response_format). Each sampled case runs
// with several seeds. Prints one line per check; exits non-zero on failure.
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';
import assert from 'node:assert/strict';

const url = process.env.PAGODA_URL;
assert.ok(url, 'PAGODA_URL is not set');
const client = new OpenAI({ baseURL: url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
const model = 'stories260K';
const seeds = [1, 2, 3, 4, 5];
const max_tokens = 400; // the model's context is 512 tokens
const messages = [{ role: 'user', content: 'Tell me about a person.' }];

// Strings have maxLength and integers bounds, so the tiny model finishes well within max_tokens.
const Person = z.object({
  name: z.string().max(20),
  age: z.number().int().min(0).max(120),
  alive: z.boolean(),
  mood: z.enum(['happy', 'sad', 'sleepy']),
  home: z.object({ town: z.string().max(20), rooms: z.number().int().min(1).max(9) }),
  pets: z.array(z.string().max(12)).max(3),
  nickname: z.string().max(10).nullable(),
});

let checks = 0;
function ok(line) {
  checks++;
  console.log(`ok ${checks} - ${line}`);
}
function validates(value, what) {
  const r = Person.safeParse(value);
  assert.ok(r.success, `${what}: ${JSON.stringify(value)} does not validate: ${r.success ? '' : r.error.message}`);
}
const brief = (v) => JSON.stringify(v).slice(0, 100);

// Whether text is a prefix of some JSON text whose top-level value is an object:
// a recursive-descent parser that stops quietly at the end of the input.
function jsonPrefix(text) {
  const END = Symbol('end');
  let i = 0;
  const peek = () => { if (i >= text.length) throw END; return text[i]; };
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const expect = (word) => { for (const ch of word) { if (peek() !== ch) throw new SyntaxError(`at ${i}`); i++; } };
  const string = () => {
    expect('"');
    for (;;) {
      const ch = peek(); i++;
      if (ch === '"') return;
      if (ch < ' ') throw new SyntaxError(`control character at ${i - 1}`);
      if (ch === '\\') {
        const e = peek(); i++;
        if (e === 'u') { for (let k = 0; k < 4; k++) { if (!/[0-9a-fA-F]/.test(peek())) throw new SyntaxError(`at ${i}`); i++; } }
        else if (!'"\\/bfnrt'.includes(e)) throw new SyntaxError(`bad escape at ${i - 1}`);
      }
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][+-]?[0-9]*)?/.exec(text.slice(i));
    if (!m[0]) throw new SyntaxError(`at ${i}`);
    i += m[0].length;
    peek();  // a number at the very end may still grow; one followed by more text must be whole
    if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(m[0])) throw new SyntaxError(`number at ${i}`);
  };
  const value = () => {
    ws();
    const ch = peek();
    if (ch === '{') {
      i++; ws();
      if (peek() === '}') { i++; return; }
      for (;;) {
        ws(); string(); ws(); expect(':'); value(); ws();
        if (peek() === ',') { i++; continue; }
        expect('}'); return;
      }
    }
    if (ch === '[') {
      i++; ws();
      if (peek() === ']') { i++; return; }
      for (;;) { value(); ws(); if (peek() === ',') { i++; continue; } expect(']'); return; }
    }
    if (ch === '"') return string();
    if (ch === 't') return expect('true');
    if (ch === 'f') return expect('false');
    if (ch === 'n') return expect('null');
    return number();
  };
  try {
    ws();
    if (peek() !== '{') return 'not an object';
    value(); ws();
    return i === text.length ? 'complete' : `trailing text at ${i}`;
  } catch (e) {
    if (e === END) return 'object';
    return `invalid: ${e.message}`;
  }
}

// 1a. beta.chat.completions.parse + zodResponseFormat.
const parsedContent = new Map();
for (const seed of seeds) {
  const r = await client.beta.chat.completions.parse({
    model, messages, max_tokens, seed, response_format: zodResponseFormat(Person, 'person'),
  });
  const choice = r.choices[0];
  assert.equal(choice.finish_reason, 'stop', `seed ${seed}: ${choice.message.content}`);
  assert.equal(typeof choice.message.parsed, 'object');
  assert.notEqual(choice.message.parsed, null);
  validates(choice.message.parsed, `parse seed ${seed}`);
  assert.deepEqual(choice.message.parsed, JSON.parse(choice.message.content));
  parsedContent.set(seed, choice.message.content);
  ok(`openai parse zodResponseFormat seed=${seed}: ${brief(choice.message.parsed)}`);
}

// 1b. The same schema, streamed: the concatenated deltas parse, validate, and (same
// seed, same request) equal the unstreamed reply.
for (const seed of seeds) {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens, seed, stream: true, response_format: zodResponseFormat(Person, 'person'),
  });
  let content = '';
  let finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(finish, 'stop', `stream seed ${seed}: ${content}`);
  validates(JSON.parse(content), `stream seed ${seed}`);
  assert.equal(content, parsedContent.get(seed), `stream seed ${seed} differs from the unstreamed reply`);
  ok(`openai streamed json_schema seed=${seed}: ${content.length} chars, equal to the unstreamed reply`);
}

// 1c. The beta streaming helper, which parses the final message itself.
{
  const stream = client.beta.chat.completions.stream({
    model, messages, max_tokens, seed: 6, response_format: zodResponseFormat(Person, 'person'),
  });
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'stop');
  validates(final.choices[0].message.parsed, 'beta stream');
  ok(`openai beta.chat.completions.stream finalChatCompletion parsed: ${brief(final.choices[0].message.parsed)}`);
}

// 1d. json_object: any JSON object. The story model rarely closes a free string, so a
// reply may run out of max_tokens; it must then still be a prefix of a JSON object.
for (const seed of seeds) {
  const r = await client.chat.completions.create({
    model, messages, max_tokens, seed, response_format: { type: 'json_object' },
  });
  const choice = r.choices[0];
  if (choice.finish_reason === 'length') {
    assert.equal(jsonPrefix(choice.message.content), 'object', choice.message.content);
    ok(`openai json_object seed=${seed}: finish_reason length after ${r.usage.completion_tokens} tokens, a valid JSON-object prefix`);
    continue;
  }
  assert.equal(choice.finish_reason, 'stop');
  const v = JSON.parse(choice.message.content);
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), choice.message.content);
  ok(`openai json_object seed=${seed}: ${brief(v)}`);
}

// 1e. response_format on /v1/completions, passed as an extra body field.
for (const seed of seeds) {
  const r = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens, seed,
    // @ts-ignore: not in the openai types for completions
    response_format: zodResponseFormat(Person, 'person'),
  });
  assert.equal(r.choices[0].finish_reason, 'stop', r.choices[0].text);
  validates(JSON.parse(r.choices[0].text), `completions seed ${seed}`);
  ok(`openai completions.create response_format json_schema seed=${seed}: ${brief(JSON.parse(r.choices[0].text))}`);
}

// 1f. vLLM's guided_choice and guided_regex, as extra body fields.
for (const seed of seeds) {
  const choices = ['yes', 'no', 'maybe'];
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, seed,
                                              // @ts-ignore: a vLLM extension
                                              guided_choice: choices });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(choices.includes(r.choices[0].text), r.choices[0].text);
  const g = await client.chat.completions.create({ model, messages, max_tokens: 30, seed,
                                                   // @ts-ignore: a vLLM extension
                                                   guided_regex: '[0-9]{3}-[a-z]{2,4}' });
  assert.equal(g.choices[0].finish_reason, 'stop');
  assert.match(g.choices[0].message.content, /^[0-9]{3}-[a-z]{2,4}$/);
  ok(`guided_choice seed=${seed}: ${r.choices[0].text}; guided_regex: ${g.choices[0].message.content}`);
}

// 2. LangChain.js: ChatOpenAI.withStructuredOutput(zod, {method: "jsonSchema"}).
for (const seed of seeds) {
  const llm = new ChatOpenAI({
    model, apiKey: 'unused', configuration: { baseURL: url + '/v1' }, maxTokens: 400, temperature: 1,
    maxRetries: 0, modelKwargs: { seed },
  });
  const structured = llm.withStructuredOutput(Person, { name: 'person', method: 'jsonSchema' });
  const v = await structured.invoke('Describe someone from the story.');
  validates(v, `langchain seed ${seed}`);
  ok(`langchain withStructuredOutput jsonSchema seed=${seed}: ${brief(v)}`);
}

// 2b. LangChain with includeRaw: the raw AIMessage is there and the parsed value validates.
{
  const llm = new ChatOpenAI({
    model, apiKey: 'unused', configuration: { baseURL: url + '/v1' }, maxTokens: 400, temperature: 1, maxRetries: 0,
  });
  const structured = llm.withStructuredOutput(Person, { name: 'person', method: 'jsonSchema', includeRaw: true });
  const { raw, parsed } = await structured.invoke([{ role: 'user', content: 'Who lives in the town?' }]);
  validates(parsed, 'langchain includeRaw');
  assert.deepEqual(parsed, JSON.parse(raw.content));
  ok(`langchain withStructuredOutput includeRaw: ${brief(parsed)}`);
}

// 3. Schemas the server cannot honour: HTTP 400 with param response_format.
const unsupported = [
  { type: 'array', uniqueItems: true },
  { type: 'object', properties: { a: { type: 'string', pattern: '(a)\\1' } } },
];
for (const schema of unsupported) {
  await assert.rejects(
    client.chat.completions.create({
      model, messages, max_tokens: 20,
      response_format: { type: 'json_schema', json_schema: { name: 'bad', schema, strict: true } },
    }),
    (e) => {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.equal(e.status, 400, e.message);
      assert.equal(e.param, 'response_format', JSON.stringify(e.error));
      return true;
    });
  ok(`unsupported schema ${JSON.stringify(schema)}: HTTP 400, param response_format`);
}
await assert.rejects(
  client.beta.chat.completions.parse({
    model, messages, max_tokens: 20,
    response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'array', uniqueItems: true } } },
  }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === 'response_format');
ok('unsupported schema through beta.chat.completions.parse: BadRequestError, param response_format');

console.log(`structured outputs: ${checks} checks ok`);
