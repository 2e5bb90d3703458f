# init() fails the way a missing model file does.
import os


def init():
    raise FileNotFoundError(f"no model.pkl under {os.environ.get('AZUREML_MODEL_DIR')}")


def run(raw_data):
    return raw_data
