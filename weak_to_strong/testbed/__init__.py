"""The laptop testbed: a locally pretrained GPT-2 ladder (tb-s ... tb-xl) and tasks whose labels need what
pretraining taught (testbed_knowledge, testbed_binding). See README, "The testbed"."""
