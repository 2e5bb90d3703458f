"""A model-backed entry script in the style of Azure ML's public online-endpoint sample (a scikit-learn regression
loaded with joblib from AZUREML_MODEL_DIR/model/sklearn_regression_model.pkl; ``run`` parses ``{"data": rows}``,
predicts and returns a list). bench/score.py trains the model (Ridge on the diabetes data scikit-learn ships) first."""

import json
import logging
import os

import joblib
import numpy


def init():
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sklearn_regression_model.pkl")
    model = joblib.load(model_path)
    logging.info("Init complete")


def run(raw_data):
    logging.info("request received")
    data = numpy.array(json.loads(raw_data)["data"])
    result = model.predict(data)
    logging.info("Request processed")
    return result.tolist()
