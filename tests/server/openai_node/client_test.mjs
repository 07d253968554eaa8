// The official OpenAI client against pagoda: completions, streaming
// completions, chat, streaming chat, n: 2 (plain and streamed),
// embeddings (base64 and float), and an error. Exits non-zero on failure.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const client = new OpenAI({ baseURL: process.env.PAGODA_URL + '/v1', apiKey: 'test-key', maxRetries: 0 });

const models = await client.models.list();
const model = models.data[0].id;
assert.equal(model, 'stories260K');

const c = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 24, temperature: 0 });
assert.equal(c.object, 'text_completion');
assert.ok(c.choices[0].text.startsWith(', there was a little girl named Lily'), c.choices[0].text);
assert.equal(c.usage.completion_tokens, 24);

let streamed = '';
let usage = null;
const s = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 24, temperature: 0,
                                            stream: true, stream_options: { include_usage: true } });
for await (const chunk of s) {
  if (chunk.choices.length > 0) streamed += chunk.choices[0].text;
  if (chunk.usage) usage = chunk.usage;
}
assert.equal(streamed, c.choices[0].text);
assert.equal(usage.completion_tokens, 24);

const chat = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }],
                                                    max_tokens: 16, temperature: 0 });
assert.equal(chat.choices[0].message.role, 'assistant');
assert.ok(chat.choices[0].message.content.length > 0);

let chatStreamed = '';
const cs = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }],
                                                  max_tokens: 16, temperature: 0, stream: true });
for await (const chunk of cs) chatStreamed += chunk.choices[0]?.delta?.content ?? '';
assert.equal(chatStreamed, chat.choices[0].message.content);

// n: 2 -- two choices, each what its seed gives alone; streamed, the SDK's
// stream helper puts the interleaved chunks back together by index.
const two = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, seed: 3, n: 2 });
assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
assert.equal(two.usage.completion_tokens, 24);
for (const i of [0, 1]) {
  const alone = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, seed: 3 + i });
  assert.equal(two.choices[i].text, alone.choices[0].text);
}
const twoChat = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }],
                                                       max_tokens: 10, seed: 8, n: 2 });
const runner = client.beta.chat.completions.stream({ model, messages: [{ role: 'user', content: 'Once upon a time' }],
                                                     max_tokens: 10, seed: 8, n: 2 });
const merged = await runner.finalChatCompletion();
assert.equal(merged.choices.length, 2);
for (const i of [0, 1]) {
  assert.equal(merged.choices[i].index, i);
  assert.equal(merged.choices[i].message.content, twoChat.choices[i].message.content);
  assert.equal(merged.choices[i].finish_reason, twoChat.choices[i].finish_reason);
}

// Embeddings: the SDK asks for base64 and decodes it; floats when asked.
const emb = await client.embeddings.create({ model, input: ['Once upon a time', 'Lily'] });
assert.equal(emb.data.length, 2);
assert.equal(emb.data[1].index, 1);
assert.equal(emb.data[0].embedding.length, 64);
const norm = Math.sqrt(emb.data[0].embedding.reduce((a, x) => a + x * x, 0));
assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
const floats = await client.embeddings.create({ model, input: 'Once upon a time', encoding_format: 'float' });
for (let k = 0; k < 64; ++k) assert.ok(Math.abs(floats.data[0].embedding[k] - emb.data[0].embedding[k]) < 1e-5);
assert.ok(emb.usage.prompt_tokens > 0);

await assert.rejects(client.completions.create({ model, prompt: 'hi', temperature: 9 }),
                     (e) => e.status === 400 && /temperature/.test(e.message));
console.log('openai client: completions, streaming, chat, streaming chat, n: 2, embeddings, errors: ok');
