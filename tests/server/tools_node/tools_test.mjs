// Tool calling through real clients against a live pagoda serving
// stories260K: the official `openai` package (a forced call whole and
// streamed through its stream helper, a tool round trip, fields the SDK
// sends that pagoda ignores), LangChain.js (bindTools, then a ToolMessage
// round trip) and the Vercel AI SDK (generateText with a tool). A tiny model
// does not choose tools by itself, so the calls are forced with tool_choice,
// which constrains generation to the function's schema.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, ToolMessage } from "@langchain/core/messages";
import { tool as langchainTool } from "@langchain/core/tools";
import { generateText, tool as aiTool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { z } from "zod";

const baseURL = `${process.env.PAGODA_URL}/v1`;
const client = new OpenAI({ baseURL, apiKey: "unused" });
const model = (await client.models.list()).data[0].id;

const weatherParameters = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 }, unit: { type: "string", enum: ["c", "f"] } },
  required: ["city", "unit"],
  additionalProperties: false,
};
const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: weatherParameters } },
  {
    type: "function",
    function: {
      name: "get_time",
      parameters: { type: "object", properties: { zone: { enum: ["UTC", "CET"] } }, required: ["zone"] },
    },
  },
];

function checkWeather(args) {
  assert.equal(typeof args.city, "string");
  assert.ok(args.city.length <= 12);
  assert.ok(["c", "f"].includes(args.unit), `unit ${args.unit}`);
}

// openai: a forced call, whole (with fields pagoda ignores).
const forcedWeather = {
  model,
  messages: [{ role: "user", content: "Weather in Oslo?" }],
  tools,
  tool_choice: { type: "function", function: { name: "get_weather" } },
  max_tokens: 200,
  seed: 1,
};
const forced = await client.chat.completions.create({ ...forcedWeather, store: false, metadata: { test: "tools" } });
const call = forced.choices[0].message.tool_calls[0];
assert.equal(call.type, "function");
assert.equal(call.function.name, "get_weather");
assert.match(call.id, /^call_/);
checkWeather(JSON.parse(call.function.arguments));
console.log("openai: forced call", call.function.arguments);

// openai: the same streamed, accumulated by the SDK's own stream helper.
const stream = client.beta.chat.completions.stream(forcedWeather);
let argumentDeltas = 0;
stream.on("chunk", (chunk) => {
  if (chunk.choices[0]?.delta?.tool_calls) argumentDeltas++;
});
const streamed = await stream.finalChatCompletion();
const streamedCall = streamed.choices[0].message.tool_calls[0];
assert.equal(streamedCall.function.name, "get_weather");
assert.equal(streamedCall.function.arguments, call.function.arguments, "streamed equals whole (same seed)");
assert.ok(argumentDeltas > 2, `tool-call deltas: ${argumentDeltas}`);
console.log("openai: streamed call in", argumentDeltas, "deltas");

// openai: required, then the tool result sent back (assistant tool_calls with content null, a tool message).
const required = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Time in Paris?" }],
  tools,
  tool_choice: "required",
  parallel_tool_calls: false,
  max_tokens: 300,
  seed: 2,
});
const requiredChoice = required.choices[0];
if (requiredChoice.finish_reason === "tool_calls") {
  assert.equal(requiredChoice.message.tool_calls.length, 1);
  assert.ok(["get_weather", "get_time"].includes(requiredChoice.message.tool_calls[0].function.name));
  JSON.parse(requiredChoice.message.tool_calls[0].function.arguments);
} else {
  assert.equal(requiredChoice.finish_reason, "length");  // a random model may ramble inside the grammar
}
const answer = await client.chat.completions.create({
  model,
  messages: [
    { role: "user", content: "Weather in Oslo?" },
    { role: "assistant", content: null, tool_calls: [call] },
    { role: "tool", tool_call_id: call.id, content: "4 degrees and rain" },
  ],
  tools,
  max_tokens: 8,
});
assert.equal(typeof answer.choices[0].message.content, "string");
console.log("openai: round trip answered", JSON.stringify(answer.choices[0].message.content));

// LangChain.js: bindTools with a forced tool, then the tool's result as a ToolMessage.
const weatherTool = langchainTool(async ({ city }) => `4 degrees in ${city}`, {
  name: "get_weather",
  description: "Weather in a city",
  schema: z.object({ city: z.string().max(12), unit: z.enum(["c", "f"]) }),
});
const chat = new ChatOpenAI({ model, apiKey: "unused", configuration: { baseURL }, maxTokens: 200, temperature: 0.7 });
const withTools = chat.bindTools([weatherTool], { tool_choice: "get_weather" });
const question = new HumanMessage("Weather in Oslo?");
const aiMessage = await withTools.invoke([question]);
assert.equal(aiMessage.tool_calls.length, 1);
assert.equal(aiMessage.tool_calls[0].name, "get_weather");
checkWeather(aiMessage.tool_calls[0].args);
const toolMessage = await weatherTool.invoke(aiMessage.tool_calls[0]);
assert.ok(toolMessage instanceof ToolMessage);
const final = await chat.bindTools([weatherTool]).invoke([question, aiMessage, toolMessage]);
assert.equal(typeof final.content, "string");
console.log("langchain: call", JSON.stringify(aiMessage.tool_calls[0].args), "then", JSON.stringify(final.content));

// Vercel AI SDK: generateText with a tool it must call.
const provider = createOpenAICompatible({ name: "pagoda", baseURL, apiKey: "unused" });
const result = await generateText({
  model: provider.chatModel(model),
  prompt: "Weather in Oslo?",
  tools: {
    get_weather: aiTool({
      description: "Weather in a city",
      inputSchema: z.object({ city: z.string().max(12), unit: z.enum(["c", "f"]) }),
    }),
  },
  toolChoice: { type: "tool", toolName: "get_weather" },
  maxOutputTokens: 200,
});
assert.equal(result.toolCalls.length, 1);
assert.equal(result.toolCalls[0].toolName, "get_weather");
checkWeather(result.toolCalls[0].input);
console.log("ai sdk: call", JSON.stringify(result.toolCalls[0].input));
console.log("all tool-calling client checks passed");
