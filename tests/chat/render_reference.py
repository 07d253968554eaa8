#!/usr/bin/env python3
"""The reference rendering of a chat template, as Hugging Face transformers'
apply_chat_template makes it (../shared/chat-templates/README.md): Jinja2's
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and the
loopcontrols extension, transformers' tojson filter, raise_exception and
strftime_now globals; the variables messages, tools (None when the request has
none, as transformers passes it), documents (None), add_generation_prompt,
bos_token and eos_token.

Same interface as `pagoda chat-template render --template F`: a chat request
body (JSON: messages, optional tools, add_generation_prompt default true) on
stdin, the prompt on stdout with nothing added; exit 1 (message on stderr)
when the template fails to render, 2 for bad input. As vLLM does, an
assistant tool call's arguments string is parsed into an object (kept as the
string when it is not JSON).

Usage: render_reference.py --template FILE [--bos-token S] [--eos-token S]
       render_reference.py --batch JOBS   (one JSON object per line: template, bos, eos,
       body (a file), out (a file to write; OUT.rc gets the exit status, OUT.err the error))
"""
import argparse
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def messages_for_template(messages):
    out = []
    for m in messages:
        m = dict(m)
        if m.get("role") == "assistant" and isinstance(m.get("tool_calls"), list):
            calls = []
            for call in m["tool_calls"]:
                call = dict(call)
                fn = dict(call.get("function", {}))
                if isinstance(fn.get("arguments"), str):
                    try:
                        fn["arguments"] = json.loads(fn["arguments"])
                    except ValueError:
                        pass
                call["function"] = fn
                calls.append(call)
            m["tool_calls"] = calls
        out.append(m)
    return out


def render(template_path, body_text, bos, eos):
    """(exit status, prompt text or error message)"""
    try:
        body = json.loads(body_text)
        messages = messages_for_template(body["messages"])
        with open(template_path, encoding="utf-8") as f:
            source = f.read()
    except (ValueError, KeyError, TypeError, OSError) as e:
        return 2, f"bad input: {e}"
    try:
        text = environment().from_string(source).render(
            messages=messages,
            tools=body.get("tools"),
            documents=None,
            add_generation_prompt=body.get("add_generation_prompt", True),
            bos_token=bos,
            eos_token=eos,
        )
    except Exception as e:  # noqa: BLE001 - any template failure is exit 1, as pagoda's
        return 1, f"{type(e).__name__}: {e}"
    return 0, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--template")
    ap.add_argument("--bos-token", default="")
    ap.add_argument("--eos-token", default="")
    ap.add_argument("--batch")
    args = ap.parse_args()
    if args.batch:
        with open(args.batch, encoding="utf-8") as jobs:
            for line in jobs:
                job = json.loads(line)
                with open(job["body"], encoding="utf-8") as f:
                    rc, text = render(job["template"], f.read(), job["bos"], job["eos"])
                with open(job["out"] if rc == 0 else job["out"] + ".err", "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                with open(job["out"] + ".rc", "w", encoding="utf-8") as f:
                    f.write(f"{rc}\n")
        return 0
    if not args.template:
        ap.error("--template FILE or --batch JOBS")
    rc, text = render(args.template, sys.stdin.read(), args.bos_token, args.eos_token)
    if rc == 0:
        sys.stdout.write(text)
    else:
        print(text, file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
