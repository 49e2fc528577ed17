import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion } from "@resilient-llm/core"
import { Effect, Option, Schema } from "effect"

describe("ChatCompletion.PromptRequest", () => {
  it("keeps every named field of a request but model, with its type, and lets extra fields through", () => {
    const request: ChatCompletion.PromptRequest = {
      messages: [{ role: "user", content: "Name a prime." }],
      temperature: 0,
      stop: ["\n"],
      // a provider's own extension
      reasoning_effort: "low"
    }
    const messages: ReadonlyArray<ChatCompletion.ChatMessage> = request.messages
    const temperature: number | null | undefined = request.temperature
    assert.strictEqual(messages[0].content, "Name a prime.")
    assert.strictEqual(temperature, 0)
    assert.strictEqual(request.reasoning_effort, "low")

    // @ts-expect-error a request needs its messages: only extra fields is not a request
    const nothing: ChatCompletion.PromptRequest = { nothing: 1 }
    // @ts-expect-error `messages` is a list of messages, not `unknown`
    const text: ChatCompletion.PromptRequest = { messages: "Name a prime." }
    // @ts-expect-error a named field keeps its type
    const hot: ChatCompletion.PromptRequest = { messages: [], temperature: "hot" }
    // @ts-expect-error a message keeps its type
    const noRole: ChatCompletion.PromptRequest = { messages: [{ content: "hi" }] }

    // and the schema refuses at run time what the types refuse
    const isPromptRequest = Schema.is(ChatCompletion.PromptRequest)
    assert.isFalse(isPromptRequest(nothing))
    assert.isFalse(isPromptRequest(text))
    assert.isFalse(isPromptRequest(hot))
    assert.isFalse(isPromptRequest(noRole))
    assert.isTrue(isPromptRequest(request))
  })

  it("accepts null where the OpenAI spec does (temperature, top_p, stop, seed, max_tokens, stream_options)", () => {
    const defaults: ChatCompletion.PromptRequest = {
      messages: [{ role: "user", content: "hi" }],
      temperature: null,
      top_p: null,
      stop: null,
      seed: null,
      max_tokens: null,
      max_completion_tokens: null,
      stream_options: null
    }
    assert.isTrue(Schema.is(ChatCompletion.PromptRequest)(defaults))
    assert.isFalse(Schema.is(ChatCompletion.PromptRequest)({ ...defaults, user: null }), "user is not nullable")
  })
})

describe("ChatCompletion.ChatRequest: typed after the OpenAI spec", () => {
  const isRequest = Schema.is(ChatCompletion.ChatRequest)
  const base = { model: "m", messages: [{ role: "user", content: "hi" }] } as const

  it("a typo in a role, a content part, a tool, tool_choice or response_format is a compile error and refused at run time", () => {
    // @ts-expect-error no such role
    const role: ChatCompletion.ChatMessage = { role: "usr", content: "hi" }
    // @ts-expect-error no such content part
    const part: ChatCompletion.UserContentPart = { type: "txt", text: "hi" }
    // @ts-expect-error `url`, not `ur`
    const url: ChatCompletion.UserContentPart = { type: "image_url", image_url: { ur: "https://x.test/a.png" } }
    // @ts-expect-error detail is auto, low or high
    const detail: ChatCompletion.UserContentPart = { type: "image_url", image_url: { url: "u", detail: "hi-res" } }
    const image = { type: "image_url", image_url: { url: "u" } } as const
    // @ts-expect-error a system message holds text parts only
    const system: ChatCompletion.ChatMessage = { role: "system", content: [image] }
    // @ts-expect-error a tool result names the call it answers
    const toolResult: ChatCompletion.ChatMessage = { role: "tool", content: "42" }
    // @ts-expect-error no such tool type
    const toolType: ChatCompletion.Tool = { type: "fucntion", function: { name: "f" } }
    // @ts-expect-error a function needs a name
    const noName: ChatCompletion.Tool = { type: "function", function: { description: "f" } }
    // @ts-expect-error `parameters` is a JSON Schema object
    const parameters: ChatCompletion.Tool = { type: "function", function: { name: "f", parameters: "{}" } }
    // @ts-expect-error no such mode
    const mode: ChatCompletion.ToolChoice = "requried"
    // @ts-expect-error a named choice names its function
    const named: ChatCompletion.ToolChoice = { type: "function" }
    // @ts-expect-error no such format
    const format: ChatCompletion.ResponseFormat = { type: "json" }
    // @ts-expect-error a JSON schema format has a name
    const jsonSchema: ChatCompletion.ResponseFormat = { type: "json_schema", json_schema: { schema: {} } }
    // @ts-expect-error parallel_tool_calls is a boolean
    const parallel: ChatCompletion.RequestOptions = { parallel_tool_calls: "yes" }

    const refused: ReadonlyArray<readonly [string, unknown]> = [
      ["a role", { ...base, messages: [role] }],
      ["a part's type", { ...base, messages: [{ role: "user", content: [part] }] }],
      ["an image part's url", { ...base, messages: [{ role: "user", content: [url] }] }],
      ["an image part's detail", { ...base, messages: [{ role: "user", content: [detail] }] }],
      ["an image in a system message", { ...base, messages: [system] }],
      ["a tool message without tool_call_id", { ...base, messages: [toolResult] }],
      ["a tool's type", { ...base, tools: [toolType] }],
      ["a function without a name", { ...base, tools: [noName] }],
      ["parameters as text", { ...base, tools: [parameters] }],
      ["a tool_choice mode", { ...base, tool_choice: mode }],
      ["a named tool_choice without its function", { ...base, tool_choice: named }],
      ["a response_format type", { ...base, response_format: format }],
      ["a json_schema without a name", { ...base, response_format: jsonSchema }],
      ["parallel_tool_calls as text", { ...base, ...parallel }]
    ]
    for (const [name, request] of refused) assert.isFalse(isRequest(request), name)
  })

  it("every shape the spec gives a message, a part, a tool, tool_choice and response_format is accepted", () => {
    const request: ChatCompletion.ChatRequest = {
      model: "m",
      messages: [
        { role: "developer", content: "Be brief." },
        { role: "system", content: [{ type: "text", text: "You are terse." }] },
        {
          role: "user",
          name: "ada",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" } },
            { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
            { type: "file", file: { file_id: "file-1" } }
          ]
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "look", arguments: "{}" } }]
        },
        { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "a cat" }] },
        { role: "assistant", content: [{ type: "refusal", refusal: "I can't." }], audio: { id: "audio_1" } },
        { role: "function", name: "legacy", content: null }
      ],
      tools: [
        { type: "function", function: { name: "look", parameters: { type: "object" }, strict: true } },
        {
          type: "custom",
          custom: { name: "sql", format: { type: "grammar", grammar: { definition: "q", syntax: "lark" } } }
        }
      ],
      tool_choice: {
        type: "allowed_tools",
        allowed_tools: { mode: "auto", tools: [{ type: "function", function: { name: "look" } }] }
      },
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object" }, strict: true }
      },
      parallel_tool_calls: false,
      logprobs: true,
      top_logprobs: 2,
      n: 1
    }
    assert.isTrue(isRequest(request))
    for (const tool_choice of ["none", "auto", "required", { type: "custom", custom: { name: "sql" } }] as const) {
      assert.isTrue(isRequest({ ...request, tool_choice }), JSON.stringify(tool_choice))
    }
    for (const response_format of [{ type: "text" }, { type: "json_object" }] as const) {
      assert.isTrue(isRequest({ ...request, response_format }), response_format.type)
    }
  })

  it.effect("unknown fields pass through at every level: request, message, part, tool, function, format", () =>
    Effect.gen(function*() {
      const request: ChatCompletion.ChatRequest = {
        model: "m",
        messages: [{
          role: "user",
          content: [{ type: "text", text: "hi", cache_control: { type: "ephemeral" } }],
          speaker: "ada"
        }],
        tools: [{
          type: "function",
          function: { name: "f", parameters: { type: "object", properties: {} }, x_examples: [1] },
          x_tool: true
        }],
        response_format: { type: "json_schema", json_schema: { name: "a", x_format: 1 } },
        reasoning_effort: "low",
        x_provider: { nested: [1, 2] }
      }
      const encoded = yield* ChatCompletion.encodeRequest(request)
      assert.deepStrictEqual(encoded, request)
      const decoded = yield* Schema.decodeUnknownEffect(ChatCompletion.ChatRequest)(JSON.parse(JSON.stringify(request)))
      assert.deepStrictEqual(decoded, request)
    }))

  it.effect("a completion's message goes back into a request as history, and parts narrow on their type", () =>
    Effect.gen(function*() {
      const completion = yield* ChatCompletion.decodeCompletion({
        model: "m",
        choices: [{ message: { role: "assistant", content: "Paris.", refusal: null, annotations: [] } }]
      })
      const history: ReadonlyArray<ChatCompletion.ChatMessage> = [
        {
          role: "user",
          content: [
            { type: "text", text: "Capital of the country in this picture?" },
            { type: "image_url", image_url: { url: "https://x.test/flag.png" } }
          ]
        },
        completion.choices[0].message,
        { role: "user", content: "And its population?" }
      ]
      assert.isTrue(isRequest({ model: "m", messages: history }))
      assert.deepStrictEqual<unknown>(
        yield* ChatCompletion.encodeRequest({ model: "m", messages: history }),
        { model: "m", messages: history }
      )

      // what a reader of a request's parts writes: narrowing on `type` reaches each part's fields
      const partsOf = (message: ChatCompletion.ChatMessage): ReadonlyArray<string> =>
        message.role !== "user" || typeof message.content === "string"
          ? []
          : message.content.map((part) =>
            part.type === "text"
              ? part.text
              : part.type === "image_url"
              ? part.image_url.url
              : part.type === "input_audio"
              ? part.input_audio.format
              : part.file.filename ?? ""
          )
      assert.deepStrictEqual(partsOf(history[0]), [
        "Capital of the country in this picture?",
        "https://x.test/flag.png"
      ])
    }))
})

describe("ChatCompletion.withModel", () => {
  it("sets the model and keeps every other field, extensions included", () => {
    const request: ChatCompletion.PromptRequest = {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      reasoning_effort: "low"
    }
    const chat: ChatCompletion.ChatRequest = ChatCompletion.withModel(request, "gpt-4o")
    assert.deepStrictEqual(chat, {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      reasoning_effort: "low",
      model: "gpt-4o"
    })
    assert.deepStrictEqual(request, {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      reasoning_effort: "low"
    })
  })

  it("replaces a model carried among the extra fields", () => {
    const request: ChatCompletion.PromptRequest = { messages: [], model: "stale" }
    assert.strictEqual(ChatCompletion.withModel(request, "fresh").model, "fresh")
  })

  it.effect("what it builds encodes as a ChatRequest", () =>
    Effect.gen(function*() {
      const encoded = yield* ChatCompletion.encodeRequest(
        ChatCompletion.withModel(ChatCompletion.prompt("hi", { seed: 7, user_tier: "free" }), "m")
      )
      assert.deepStrictEqual(encoded, {
        model: "m",
        messages: [{ role: "user", content: "hi" }],
        seed: 7,
        user_tier: "free"
      })
    }))
})

/** A completion as OpenAI sends it with every optional part, and fields no spec names. */
const everything = {
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1_741_570_283,
  model: "gpt-4o-2024-08-06",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: "Paris [1].",
      refusal: null,
      reasoning_content: "The user asks for a capital.",
      annotations: [
        { type: "url_citation", url_citation: { start_index: 6, end_index: 9, url: "https://x.test", title: "X" } },
        { type: "file", file: { hash: "abc", name: "doc.pdf" } }
      ],
      audio: { id: "audio_1", expires_at: 1_741_573_883, data: "UklGRg==", transcript: "Paris." },
      tool_calls: [
        { id: "call_1", type: "function", function: { name: "f", arguments: "{}" }, x_call: 1 },
        { id: "call_2", type: "custom", custom: { name: "sql", input: "select 1" } }
      ]
    },
    logprobs: {
      content: [{
        token: "Paris",
        logprob: -0.01,
        bytes: [80, 97, 114, 105, 115],
        top_logprobs: [{ token: "Paris", logprob: -0.01, bytes: [80, 97, 114, 105, 115] }]
      }],
      refusal: null
    },
    finish_reason: "stop",
    content_filter_results: { hate: { filtered: false } },
    stop_reason: 128_008
  }],
  usage: {
    prompt_tokens: 1117,
    completion_tokens: 46,
    total_tokens: 1163,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 32,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0
    },
    cost: 0.0042
  },
  service_tier: "default",
  system_fingerprint: "fp_fc9f1d7035",
  x_groq: { id: "req_1" }
}

describe("ChatCompletion.decodeCompletion", () => {
  it.effect("keeps every field a provider sends, typed where the spec defines it, and re-encodes to the same JSON", () =>
    Effect.gen(function*() {
      const completion = yield* ChatCompletion.decodeCompletion(everything)
      assert.deepStrictEqual<unknown>(completion, everything)
      assert.deepStrictEqual<unknown>(yield* ChatCompletion.encodeCompletion(completion), everything)

      // typed: what a caller reads compiles to its spec type
      const cached: number | null | undefined = completion.usage?.prompt_tokens_details?.cached_tokens
      const reasoningTokens: number | null | undefined = completion.usage?.completion_tokens_details?.reasoning_tokens
      const fingerprint: string | null | undefined = completion.system_fingerprint
      const tier: string | null | undefined = completion.service_tier
      const created: number | null | undefined = completion.created
      const [choice] = completion.choices
      const logprob: number | undefined = choice.logprobs?.content?.[0]?.logprob
      const transcript: string | undefined = choice.message.audio?.transcript
      assert.deepStrictEqual([cached, reasoningTokens, fingerprint, tier, created, logprob, transcript], [
        1024,
        32,
        "fp_fc9f1d7035",
        "default",
        1_741_570_283,
        -0.01,
        "Paris."
      ])
      const urls = (choice.message.annotations ?? []).filter(ChatCompletion.isUrlCitation).map((a) =>
        a.url_citation.url
      )
      assert.deepStrictEqual(urls, ["https://x.test"])
      const [first, second] = choice.message.tool_calls ?? []
      assert.strictEqual(first?.type === "function" ? first.function.name : undefined, "f")
      assert.strictEqual(second?.type === "custom" ? second.custom.input : undefined, "select 1")
      // a provider's own fields are there, as they came
      assert.strictEqual(completion.x_groq !== undefined, true)
      assert.deepStrictEqual(ChatCompletion.reasoning(completion), Option.some("The user asks for a capital."))
    }))

  it.effect("tolerates what providers differ in: no usage, no id, content null, null for what was not reported", () =>
    Effect.gen(function*() {
      const minimal = yield* ChatCompletion.decodeCompletion({ model: "m", choices: [{ message: { content: null } }] })
      // the defaults of the fields a caller relies on; nothing else is made up
      assert.deepStrictEqual(minimal, {
        id: "",
        model: "m",
        choices: [{ index: 0, message: { role: "assistant", content: null }, finish_reason: null }]
      })
      assert.strictEqual(ChatCompletion.text(minimal), "")
      assert.isTrue(Option.isNone(ChatCompletion.tokens(minimal)))
      assert.isTrue(Option.isNone(ChatCompletion.reasoning(minimal)))
      // an explicit `undefined` reads as absent
      const undefinedFields = yield* ChatCompletion.decodeCompletion({
        id: undefined,
        model: "m",
        choices: [{ message: { role: undefined, content: "hi" }, finish_reason: undefined }]
      })
      assert.deepStrictEqual(undefinedFields.choices[0], {
        index: 0,
        message: { role: "assistant", content: "hi" },
        finish_reason: null
      })
      // proxies that serialize every optional field send null for what they do not know
      const nulls = {
        id: "x",
        object: null,
        created: null,
        model: "m",
        system_fingerprint: null,
        service_tier: null,
        choices: [{
          index: 0,
          message: {
            role: "assistant",
            content: "hi",
            refusal: null,
            tool_calls: null,
            function_call: null,
            annotations: null,
            audio: null
          },
          logprobs: null,
          finish_reason: "stop"
        }],
        usage: {
          prompt_tokens: 1,
          completion_tokens: 1,
          total_tokens: null,
          prompt_tokens_details: { cached_tokens: null, text_tokens: null },
          completion_tokens_details: null
        }
      }
      assert.deepStrictEqual<unknown>(yield* ChatCompletion.decodeCompletion(nulls), nulls)
    }))

  it.effect("a field named __proto__ is data: kept as it came, never the decoded object's prototype", () =>
    Effect.gen(function*() {
      const body = JSON.parse(
        `{"model":"m","choices":[{"message":{"content":"x","__proto__":{"polluted":1}}}],"__proto__":{"polluted":2}}`
      )
      const completion = yield* ChatCompletion.decodeCompletion(body)
      for (const value of [completion, completion.choices[0].message]) {
        assert.strictEqual(Object.getPrototypeOf(value), Object.prototype)
        assert.isUndefined(Reflect.get(value, "polluted"))
      }
      assert.strictEqual(
        JSON.stringify(yield* ChatCompletion.encodeCompletion(completion)),
        `{"id":"","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x",` +
          `"__proto__":{"polluted":1}},"finish_reason":null}],"__proto__":{"polluted":2}}`
      )
      assert.deepStrictEqual(Object.getOwnPropertyDescriptor(completion, "__proto__")?.value, { polluted: 2 })
    }))

  it.effect("empty or missing `choices` is refused, never an empty success", () =>
    Effect.gen(function*() {
      for (const body of [{ model: "m", choices: [] }, { model: "m" }, { choices: [{ message: {} }] }]) {
        const error = yield* Effect.flip(ChatCompletion.decodeCompletion(body))
        assert.strictEqual(error._tag, "SchemaError", JSON.stringify(body))
      }
    }))

  it.effect("a token count must be a non-negative integer: 1e400 is not Infinity, -1 and 1.5 are refused", () =>
    Effect.gen(function*() {
      const withUsage = (usage: string) =>
        JSON.parse(`{"model":"m","choices":[{"message":{"content":"hi"}}],"usage":${usage}}`)
      const bad = [
        ["prompt_tokens", `{"prompt_tokens":1e400,"completion_tokens":1}`],
        ["completion_tokens", `{"prompt_tokens":1,"completion_tokens":-1}`],
        ["total_tokens", `{"prompt_tokens":1,"completion_tokens":1,"total_tokens":1.5}`],
        ["prompt_tokens", `{"prompt_tokens":"12","completion_tokens":1}`],
        ["prompt_tokens", `{"prompt_tokens":9007199254740993,"completion_tokens":1}`],
        ["cached_tokens", `{"prompt_tokens":1,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":-1e400}}`],
        [
          "reasoning_tokens",
          `{"prompt_tokens":1,"completion_tokens":1,"completion_tokens_details":{"reasoning_tokens":2.5}}`
        ]
      ] as const
      for (const [field, usage] of bad) {
        const error = yield* Effect.flip(ChatCompletion.decodeCompletion(withUsage(usage)))
        assert.include(error.message, field, usage)
      }
      const chunkError = yield* Effect.flip(
        ChatCompletion.decodeChunk(JSON.parse(`{"choices":[],"usage":{"prompt_tokens":1e400,"completion_tokens":0}}`))
      )
      assert.include(chunkError.message, "prompt_tokens")
      const zero = yield* ChatCompletion.decodeCompletion(withUsage(`{"prompt_tokens":0,"completion_tokens":0}`))
      assert.deepStrictEqual(ChatCompletion.tokens(zero), Option.some({ input: 0, output: 0 }))
    }))

  it.effect("annotations of other kinds are kept; a malformed URL citation is refused, not kept as another kind", () =>
    Effect.gen(function*() {
      const body = (annotations: ReadonlyArray<unknown>) => ({
        model: "m",
        choices: [{ message: { content: "x", annotations } }]
      })
      const other = yield* ChatCompletion.decodeCompletion(body([{ type: "file", file: { name: "a.pdf" } }]))
      assert.deepStrictEqual(other.choices[0].message.annotations, [{ type: "file", file: { name: "a.pdf" } }])
      assert.isFalse(ChatCompletion.isUrlCitation(other.choices[0].message.annotations![0]))
      const malformed = yield* Effect.flip(
        ChatCompletion.decodeCompletion(body([{ type: "url_citation", url_citation: { title: "no url" } }]))
      )
      assert.include(malformed.message, "url")
    }))
})

describe("ChatCompletion.decodeChunk", () => {
  it.effect("keeps every field of a chunk, typed where the spec defines it, and re-encodes to the same JSON", () =>
    Effect.gen(function*() {
      const body = {
        id: "chatcmpl-1",
        object: "chat.completion.chunk",
        created: 1_694_268_190,
        model: "gpt-4o-mini",
        system_fingerprint: "fp_44709d6fcb",
        service_tier: "default",
        choices: [{
          index: 0,
          delta: {
            role: "assistant",
            content: "Hel",
            reasoning_content: "Greeting.",
            tool_calls: [{ index: 0, id: null, type: null, function: { name: null, arguments: "{\"a\"" } }]
          },
          logprobs: { content: [{ token: "Hel", logprob: -0.5, bytes: null, top_logprobs: [] }], refusal: null },
          finish_reason: null
        }],
        usage: null,
        obfuscation: "p9K3xT6w"
      }
      const chunk = yield* ChatCompletion.decodeChunk(body)
      assert.deepStrictEqual<unknown>(chunk, body)
      assert.deepStrictEqual<unknown>(yield* Schema.encodeEffect(ChatCompletion.ChatCompletionChunk)(chunk), body)
      assert.strictEqual(ChatCompletion.chunkText(chunk), "Hel")
      assert.strictEqual(ChatCompletion.chunkReasoning(chunk), "Greeting.")
      assert.strictEqual(chunk.choices[0].logprobs?.content?.[0]?.logprob, -0.5)
    }))

  it.effect("tolerates a chunk with no id, model or choices (the usage chunk, Azure's filter chunk)", () =>
    Effect.gen(function*() {
      const chunk = yield* ChatCompletion.decodeChunk({
        choices: [{ delta: { content: "a", reasoning: "b" }, logprobs: null }],
        obfuscation: "x"
      })
      assert.deepStrictEqual(chunk, {
        id: "",
        model: "",
        choices: [{ index: 0, delta: { content: "a", reasoning: "b" }, logprobs: null, finish_reason: null }],
        obfuscation: "x"
      })
      assert.strictEqual(ChatCompletion.chunkReasoning(chunk), "b")
      const azure = { choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: [] }
      assert.deepStrictEqual(yield* ChatCompletion.decodeChunk(azure), azure)
      assert.strictEqual(ChatCompletion.chunkReasoning(yield* ChatCompletion.decodeChunk(azure)), "")
    }))
})

describe("ChatCompletion.isTokenCount", () => {
  it("a non-negative safe integer, and nothing else", () => {
    for (const count of [0, 1, 1163, Number.MAX_SAFE_INTEGER]) {
      assert.isTrue(ChatCompletion.isTokenCount(count), `${count}`)
    }
    for (const count of [Infinity, -Infinity, Number.NaN, -1, 0.5, 2 ** 53, "12", null, undefined]) {
      assert.isFalse(ChatCompletion.isTokenCount(count), String(count))
    }
  })
})

describe("ChatCompletion.prompt", () => {
  it("one user message, and the options with their types", () => {
    const request = ChatCompletion.prompt("Name a prime.", { temperature: 0, max_tokens: 16, logprobs: true })
    assert.deepStrictEqual(request, {
      temperature: 0,
      max_tokens: 16,
      logprobs: true,
      messages: [{ role: "user", content: "Name a prime." }]
    })
    // @ts-expect-error an option keeps its type
    const hot = ChatCompletion.prompt("hi", { temperature: "hot" })
    assert.strictEqual<unknown>(hot.temperature, "hot", "refused by the types; at run time passed on as given")
  })
})
