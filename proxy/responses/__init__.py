"""OpenAI's Responses API (`POST /v1/responses`) over chat completions. Pure, no I/O.

Most local model servers answer chat completions; fewer answer the Responses API,
and those that do differ in how much of it they speak. So the proxy serves
`/v1/responses` itself for every backend: the request becomes a chat request
(:func:`to_chat`), which is classified, routed, adapted and relayed like any
other, and the chat answer comes back as a Responses answer: whole
(:func:`chat_to_response`) or event by event (:class:`ResponseStream`), so a
streamed answer still reaches the client token by token. A backend declared to
serve the API itself (`backends.<name>.responses_api`) gets the request as
sent, relayed byte for byte.

What translates is the *stateless* subset:

* ``input`` as a string or a list of items: messages (``input_text``,
  ``output_text``, ``refusal``, ``input_image`` by URL), ``function_call`` and
  ``function_call_output`` (the tool round trip), ``reasoning`` (dropped: the
  model's own earlier thoughts are not sent back);
* ``instructions`` (a system message first), ``max_output_tokens``
  (``max_tokens``), ``temperature``, ``top_p``, ``parallel_tool_calls``;
* function ``tools`` and ``tool_choice``; ``text.format`` ``json_schema`` /
  ``json_object`` (``response_format``).

Fields the proxy can't honour get a 400 that names them (:func:`check`): the
ones that need state kept between requests (``previous_response_id``,
``conversation``, ``store: true``, ``background: true``, stored ``prompt``
templates, ``item_reference`` items) and OpenAI's built-in tools
(``web_search``, ``file_search``, …). Fields that only tune OpenAI's service
(``metadata``, ``include``, ``truncation``, ``service_tier``, ``reasoning``, …)
are dropped; fields the Responses API doesn't define (``top_k``, ``min_p``)
pass through to the backend, as they do on every endpoint.

The event sequence of a stream is the one OpenAI sends and the openai SDK's
``client.responses.stream`` helper checks (every event with its
``sequence_number``)::

    response.created, response.in_progress
    per item: response.output_item.added
      message:       response.content_part.added, response.output_text.delta…,
                     response.output_text.done, response.content_part.done
      function_call: response.function_call_arguments.delta…, …arguments.done
      reasoning:     response.reasoning_text.delta…, response.reasoning_text.done
    response.output_item.done
    response.completed (response.incomplete when max_output_tokens cut it)

A stream that fails after it began (the backend's own error event, the proxy's
error event after a timeout, or a stream cut without its end) ends with an
``error`` event and ``response.failed``: never silently.
"""

from .answer import ResponseStream, chat_to_response, responses_usage
from .request import check, to_chat, with_limits

__all__ = [
    "ResponseStream",
    "chat_to_response",
    "check",
    "responses_usage",
    "to_chat",
    "with_limits",
]
