"""The verify stage: each kept pair checked by a second reading (re-answering, multiple choice,
the evidence on the page, the answer's type) and rated by a judge, as verdicts per candidate
shard that the write stage records and filters on."""
