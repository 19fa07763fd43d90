"""From a decoded step's logits to each sequence's output: drawn tokens, checked against the
guesses decoded after them, streamed with stop handling; or a scored text's log-probabilities."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import llama_cpp

from llm_server.engine.sampling import Drawing, log_softmax_row, top_indices
from llm_server.engine.sequence import Sequence
from llm_server.engine.slots import Slot
from llm_server.engine.types import FinishReason, ScoredToken, TokenOut, TopLogprob


class TokenOutputs:
    """Reads the logits of one llama.cpp context on the scheduler's worker thread."""

    def __init__(
        self,
        ctx: llama_cpp.llama_context_p,
        vocab: llama_cpp.llama_vocab_p,
        finish: Callable[[Sequence, FinishReason], None],
        drop_after: Callable[[Slot, int], None],
    ) -> None:
        """`finish` ends a sequence (stop, length); `drop_after` forgets a sequence's cells
        from a position on (rejected guesses)."""
        self._ctx = ctx
        self._vocab = vocab
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        self._finish = finish
        self._drop_after = drop_after
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._drawing = Drawing(self._n_vocab)
        self.drafted = 0  # guesses decoded
        self.accepted = 0  # guesses the model confirmed

    def verify(self, sequence: Sequence, index: int, drafts: list[tuple[int, int]]) -> None:
        """Draw the next token as usual; while it equals the guess decoded after it, the
        guess's cell already holds it and the guess's row gives the token after."""
        slot = sequence.slot
        assert slot is not None
        token = self.sample(sequence, index)
        accepted = 0
        for guess, row in drafts:
            if token != guess:
                break
            slot.tokens.append(guess)
            sequence.n_past += 1
            accepted += 1
            token = self.sample(sequence, row)
        if accepted < len(drafts):
            self._drop_after(slot, sequence.n_past)
        self.drafted += len(drafts)
        self.accepted += accepted

    def score(self, sequence: Sequence, index: int) -> None:
        position = sequence.score_from + len(sequence.scored)
        token = sequence.prompt[position]
        logprobs = log_softmax_row(self._ctx, index, self._n_vocab)
        tops = tuple(
            TopLogprob(self._text(t), t, float(logprobs[t]))
            for t in top_indices(logprobs, sequence.score_top_k)
        )
        sequence.scored.append(ScoredToken(token, self._text(token), float(logprobs[token]), tops))

    def sample(self, sequence: Sequence, index: int) -> int | None:
        """Draw, emit and account one token; it is returned if the sequence goes on."""
        params = sequence.params
        assert params is not None
        assert sequence.sampler is not None
        assert sequence.stop is not None
        drawn = self._drawing.sample(sequence.sampler, self._ctx, index)
        if drawn is None:  # only a grammar can leave no token to draw
            self._finish(sequence, "unsatisfiable")
            return None
        token = drawn
        sequence.generated += 1
        logprob: float | None = None
        tops: tuple[TopLogprob, ...] = ()
        if params.logprobs is not None:
            logprobs = log_softmax_row(self._ctx, index, self._n_vocab)
            logprob = float(logprobs[token])
            tops = tuple(
                TopLogprob(self._text(t), t, float(logprobs[t]))
                for t in top_indices(logprobs, params.logprobs)
            )
        # Every token drawn is counted (`generated`, the usage's completion_tokens) and
        # emitted, the last one too, even when its text is empty (the end-of-generation token,
        # or one that completes a stop string): a client counting chunks or logprobs entries
        # then counts exactly what it is billed.
        if not params.ignore_eos and llama_cpp.llama_vocab_is_eog(self._vocab, token):
            held = sequence.stop.flush() + sequence.decoder.decode(b"", final=True)
            sequence.emit(TokenOut(held, token, logprob, tops))
            self._finish(sequence, "stop")
            return None
        text = sequence.decoder.decode(self._piece(token))
        text, stopped = sequence.stop.feed(text)
        if stopped:
            sequence.emit(TokenOut(text, token, logprob, tops))
            self._finish(sequence, "stop")
            return None
        if sequence.generated >= params.max_tokens:
            text += sequence.stop.flush() + sequence.decoder.decode(b"", final=True)
            sequence.emit(TokenOut(text, token, logprob, tops))
            self._finish(sequence, "length")
            return None
        sequence.emit(TokenOut(text, token, logprob, tops))
        sequence.pending_token = token
        if sequence.drafter is not None:
            sequence.drafter.append(token)
        return token

    def _piece(self, token: int) -> bytes:
        buffer = self._piece_buffer
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -size, 0, False)
        return bytes(buffer.raw[:size])

    def _text(self, token: int) -> str:
        return self._piece(token).decode("utf-8", errors="replace")
