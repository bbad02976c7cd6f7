DELETE FROM checkpoints WHERE stream_arn = $1
